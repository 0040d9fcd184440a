/** What feegate adds to fastify's request, route config and instance types. */
import type { ApiKeyPrincipal, Role } from '../tenants/api-keys.js';
import type { IdemContext } from './idempotency.js';
import type { Deps } from '../deps.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false for public routes (callbacks, return pages, docs, health). */
    auth?: boolean;
    /** Roles allowed; every authenticated role when absent. */
    roles?: readonly Role[];
    /** The route honours Idempotency-Key. */
    idempotent?: boolean;
  }
  interface FastifyRequest {
    principal: ApiKeyPrincipal | null;
    idem: IdemContext | undefined;
  }
  interface FastifyInstance {
    deps: Deps;
  }
}

export {};
