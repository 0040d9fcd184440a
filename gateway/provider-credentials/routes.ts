/** /v1/provider-credentials: each unit's own provider credentials (admin only; secrets write-only). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principal } from '../http/auth.js';
import { ListOf, errorResponses } from '../http/schemas.js';
import { claimIdempotency, completeIdempotency } from '../http/idempotency.js';
import { fail } from '../errors.js';
import { credentialsJson } from './store.js';

const Creds = Type.Object({
  object: Type.Literal('provider_credentials'),
  provider: Type.String(),
  fields: Type.Record(Type.String(), Type.String(), { description: 'non-secret values; secrets show "(set)"' }),
  updated_at: Type.String({ format: 'date-time' }),
});
const Provider = Type.Object({ provider: Type.String({ pattern: '^[a-z0-9_]{2,40}$' }) });

export const providerCredentialRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, clock, config, providers, providerCredentials: store } = app.deps;
  const admin = ['admin'] as const;
  const adapterOr404 = (id: string) => {
    const a = providers.get(id);
    if (!a || a.sandbox)
      fail('FEEGATE_ERR_PROVIDER_UNKNOWN', `No provider "${id}" takes unit credentials`, {
        providers: providers
          .list()
          .filter((x) => !x.sandbox)
          .map((x) => x.id),
      });
    return a;
  };

  app.get(
    '/v1/provider-credentials',
    {
      config: { roles: admin },
      schema: {
        tags: ['providers'],
        summary: "The unit's provider credentials (secrets are never returned)",
        response: { 200: ListOf(Creds), ...errorResponses },
      },
    },
    async (req) => {
      const tenantId = principal(req).tenantId;
      const rows = await store.list(tenantId);
      return {
        object: 'list' as const,
        data: await Promise.all(rows.map((r) => store.describe(tenantId, r, providers.get(r.provider)))),
        has_more: false,
        next_cursor: null,
      };
    },
  );

  app.post(
    '/v1/provider-credentials/:provider',
    {
      config: { roles: admin, idempotent: true },
      schema: {
        tags: ['providers'],
        summary: "Set the unit's credentials for a provider (sealed at rest; secrets are write-only)",
        params: Provider,
        body: Type.Object(
          { credentials: Type.Record(Type.String({ pattern: '^[a-z_]{1,40}$' }), Type.String({ minLength: 1, maxLength: 2000 })) },
          { additionalProperties: false },
        ),
        response: { 200: Creds, ...errorResponses },
      },
    },
    async (req) => {
      const who = principal(req);
      const adapter = adapterOr404(req.params.provider);
      return db.transaction(async (trx) => {
        await claimIdempotency(trx, clock, req.idem, config.idempotencyLockSeconds);
        const row = await store.set(trx, who.tenantId, adapter, req.body.credentials, `api_key:${who.keyId}`);
        const json = credentialsJson(row, req.body.credentials, adapter);
        await completeIdempotency(trx, clock, req.idem, 200, json);
        return json;
      });
    },
  );

  app.post(
    '/v1/provider-credentials/:provider/remove',
    {
      config: { roles: admin, idempotent: true },
      schema: {
        tags: ['providers'],
        summary: "Remove the unit's credentials for a provider (it can no longer be used for new payments)",
        params: Provider,
        response: { 200: Type.Object({ object: Type.Literal('provider_credentials'), provider: Type.String(), removed: Type.Boolean() }), ...errorResponses },
      },
    },
    async (req) => {
      const who = principal(req);
      adapterOr404(req.params.provider);
      return db.transaction(async (trx) => {
        await claimIdempotency(trx, clock, req.idem, config.idempotencyLockSeconds);
        if (!(await store.remove(trx, who.tenantId, req.params.provider, `api_key:${who.keyId}`))) fail('FEEGATE_ERR_PROVIDER_CREDENTIALS_NOT_FOUND');
        const json = { object: 'provider_credentials' as const, provider: req.params.provider, removed: true };
        await completeIdempotency(trx, clock, req.idem, 200, json);
        return json;
      });
    },
  );
};
