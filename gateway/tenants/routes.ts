/** /v1/tenant, /v1/api-keys, /v1/ledger, /v1/audit: the tenant's own administration. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principal } from '../http/auth.js';
import { ListOf, ListQuery, SafeLine, Uuid, errorResponses } from '../http/schemas.js';
import { paginate } from '../http/pagination.js';
import { claimIdempotency, completeIdempotency } from '../http/idempotency.js';
import { fail } from '../errors.js';
import { balances } from '../ledger/ledger.js';
import { verifyAudit } from '../audit/audit-log.js';
import { createApiKey, revokeApiKey, type ApiKeyRecord } from './api-keys.js';
import { findTenant } from './tenants.js';

const ApiKey = Type.Object({
  id: Uuid,
  object: Type.Literal('api_key'),
  role: Type.String(),
  mode: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to recognise it' }),
  label: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  revoked_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const keyJson = (k: ApiKeyRecord) => ({
  id: k.id,
  object: 'api_key' as const,
  role: k.role,
  mode: k.mode,
  prefix: k.prefix,
  label: k.label,
  created_at: k.created_at.toISOString(),
  revoked_at: k.revoked_at ? k.revoked_at.toISOString() : null,
});

export const tenantRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, clock, config, keys } = app.deps;
  const admin = ['admin'] as const;
  const money = ['finance', 'admin'] as const;

  app.get(
    '/v1/tenant',
    {
      schema: {
        tags: ['tenant'],
        summary: 'The tenant this key belongs to',
        response: {
          200: Type.Object({
            id: Uuid,
            object: Type.Literal('tenant'),
            code: Type.String(),
            name: Type.String(),
            kind: Type.String(),
            tax_code: Type.String(),
            address: Type.String(),
            role: Type.String(),
            mode: Type.String(),
          }),
          ...errorResponses,
        },
      },
    },
    async (req) => {
      const who = principal(req);
      const t = (await findTenant(db, who.tenantId))!;
      return {
        id: t.id,
        object: 'tenant' as const,
        code: t.code,
        name: t.name,
        kind: t.kind,
        tax_code: t.tax_code,
        address: t.address,
        role: who.role,
        mode: who.mode,
      };
    },
  );

  app.get(
    '/v1/api-keys',
    {
      config: { roles: admin },
      schema: { tags: ['tenant'], summary: "List the tenant's API keys", querystring: ListQuery, response: { 200: ListOf(ApiKey), ...errorResponses } },
    },
    async (req) =>
      paginate<ApiKeyRecord, ReturnType<typeof keyJson>>(
        db('api_keys').where({ tenant_id: principal(req).tenantId }),
        { ...req.query, table: 'api_keys' },
        keyJson,
      ),
  );

  app.post(
    '/v1/api-keys',
    {
      config: { roles: admin, idempotent: true },
      schema: {
        tags: ['tenant'],
        summary: 'Create an API key (the secret is shown once)',
        body: Type.Object(
          {
            role: Type.Union([Type.Literal('integration'), Type.Literal('finance'), Type.Literal('admin')]),
            label: Type.Optional(SafeLine({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([ApiKey, Type.Object({ secret: Type.String({ description: 'Shown once; store it now' }) })]), ...errorResponses },
      },
    },
    async (req, reply) => {
      const who = principal(req);
      // The secret is shown once: a replay of this request returns the key without it.
      const out = await db.transaction(async (trx) => {
        await claimIdempotency(trx, clock, req.idem, config.idempotencyLockSeconds);
        const { key, secret } = await createApiKey(trx, clock, {
          tenantId: who.tenantId,
          role: req.body.role,
          mode: who.mode,
          label: req.body.label,
          actor: `api_key:${who.keyId}`,
          creator: { keyId: who.keyId },
        });
        await completeIdempotency(trx, clock, req.idem, 201, { ...keyJson(key), secret: '(shown once)' });
        return { ...keyJson(key), secret };
      });
      return reply.code(201).send(out);
    },
  );

  app.post(
    '/v1/api-keys/:id/revoke',
    {
      config: { roles: admin, idempotent: true },
      schema: { tags: ['tenant'], summary: 'Revoke an API key', params: Type.Object({ id: Uuid }), response: { 200: ApiKey, ...errorResponses } },
    },
    async (req) => {
      const who = principal(req);
      const out = await db.transaction(async (trx) => {
        await claimIdempotency(trx, clock, req.idem, config.idempotencyLockSeconds);
        const key = await revokeApiKey(trx, clock, who.tenantId, req.params.id, `api_key:${who.keyId}`);
        if (!key) fail('FEEGATE_ERR_API_KEY_NOT_FOUND');
        await completeIdempotency(trx, clock, req.idem, 200, keyJson(key));
        return keyJson(key);
      });
      keys.invalidate();
      return out;
    },
  );

  app.get(
    '/v1/ledger/balances',
    {
      config: { roles: money },
      schema: {
        tags: ['ledger'],
        summary: 'Account balances derived from the journal',
        response: {
          200: Type.Object({
            object: Type.Literal('list'),
            data: Type.Array(Type.Object({ account: Type.String(), debits: Type.Integer(), credits: Type.Integer(), balance: Type.Integer() })),
          }),
          ...errorResponses,
        },
      },
    },
    async (req) => ({ object: 'list' as const, data: await balances(db, principal(req).tenantId) }),
  );

  app.get(
    '/v1/audit/verify',
    {
      config: { roles: money },
      schema: {
        tags: ['audit'],
        summary: "Walk the tenant's audit chain and report the first broken link",
        response: {
          200: Type.Object({
            tenantId: Type.String(),
            ok: Type.Boolean(),
            sealed: Type.Integer(),
            unsealed: Type.Integer(),
            broken: Type.Optional(Type.Object({ seq: Type.Integer(), id: Type.Integer(), reason: Type.String() })),
          }),
          ...errorResponses,
        },
      },
    },
    async (req) => verifyAudit(db, principal(req).tenantId),
  );
};
