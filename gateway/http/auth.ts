/**
 * API key authentication and role checks. Every /v1/ route needs a key unless its config says
 * `auth: false` (docs, health, metrics and the sandbox are outside /v1/); a route's `roles` lists who may call it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { FeegateError } from '../errors.js';
import type { ApiKeyPrincipal } from '../tenants/api-keys.js';
import './fastify-types.js';

export const authPlugin = fp(async (app: FastifyInstance) => {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config;
    const url = req.routeOptions.url;
    if (config.auth === false || !url || !url.startsWith('/v1/')) return;
    const header = req.headers.authorization;
    if (!header) throw new FeegateError('FEEGATE_ERR_AUTH_MISSING');
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m || !/^fg_(live|test)_[A-Za-z0-9_-]{16,64}$/.test(m[1]!)) throw new FeegateError('FEEGATE_ERR_AUTH_INVALID');
    const principal = await app.deps.keys.resolve(m[1]!);
    if (!principal) throw new FeegateError('FEEGATE_ERR_AUTH_INVALID');
    if (principal.revoked) throw new FeegateError('FEEGATE_ERR_AUTH_REVOKED');
    if (config.roles && !config.roles.includes(principal.role)) {
      throw new FeegateError('FEEGATE_ERR_FORBIDDEN_ROLE', `The ${principal.role} role cannot call this route`, {
        allowed_roles: config.roles,
      });
    }
    req.principal = principal;
  });
});

/** The authenticated caller; routes behind auth can rely on it. */
export function principal(req: FastifyRequest): ApiKeyPrincipal {
  if (!req.principal) throw new FeegateError('FEEGATE_ERR_AUTH_MISSING');
  return req.principal;
}
