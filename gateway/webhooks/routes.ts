/** /v1/webhook-endpoints, /v1/events, /v1/outbox: merchant webhooks and the work queue behind them. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principal } from '../http/auth.js';
import { ListOf, SafeLine, SafeText, Uuid, errorResponses, listQuery } from '../http/schemas.js';
import { paginate } from '../http/pagination.js';
import { claimIdempotency, completeIdempotency } from '../http/idempotency.js';
import { fail } from '../errors.js';
import { EVENT_TYPES, eventJson, type EventRow } from '../events/events.js';
import { deadRows, enqueue, requeue } from '../outbox/outbox.js';
import { DELIVER } from './handlers.js';
import { createEndpoint, endpointJson, removeEndpoint, type EndpointRow } from './endpoints.js';
import { assertUrlAllowed } from '../outbound.js';

const Endpoint = Type.Object({
  id: Uuid,
  object: Type.Literal('webhook_endpoint'),
  url: Type.String(),
  events: Type.Array(Type.String()),
  description: Type.String(),
  status: Type.String({ description: 'enabled | disabled (answered 410) | removed' }),
  disabled_reason: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
});
const Event = Type.Object({
  id: Uuid,
  object: Type.Literal('event'),
  type: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  data: Type.Object({ object: Type.Record(Type.String(), Type.Unknown()) }),
});
const Attempt = Type.Object({
  endpoint_id: Uuid,
  attempt: Type.Integer(),
  status_code: Type.Union([Type.Integer(), Type.Null()]),
  latency_ms: Type.Integer(),
  response_excerpt: Type.String(),
  error: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
});
const DeadRow = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  attempts: Type.Integer(),
  last_error: Type.Union([Type.String(), Type.Null()]),
  payload: Type.Record(Type.String(), Type.Unknown()),
  created_at: Type.String({ format: 'date-time' }),
});

export const webhookRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, clock, config, secrets, outbound } = app.deps;
  const admin = ['admin'] as const;
  const readers = ['finance', 'admin'] as const;

  app.post(
    '/v1/webhook-endpoints',
    {
      config: { roles: admin, idempotent: true },
      schema: {
        tags: ['webhooks'],
        summary: 'Register a webhook endpoint (its signing secret is shown once)',
        body: Type.Object(
          {
            url: Type.String({
              minLength: 1,
              maxLength: 1000,
              description:
                'https://… to a public host (http:// too in sandbox mode); private, loopback and metadata addresses, ' +
                'IP literals in odd forms and credentials in the URL are refused (FEEGATE_ERR_URL_NOT_ALLOWED) unless the operator allowed the host',
            }),
            events: Type.Array(Type.Union([Type.Literal('*'), ...EVENT_TYPES.map((e) => Type.Literal(e))]), { minItems: 1, uniqueItems: true }),
            description: Type.Optional(SafeText({ maxLength: 500 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([Endpoint, Type.Object({ secret: Type.String({ description: 'whsec_…, shown once' }) })]), ...errorResponses },
      },
    },
    async (req, reply) => {
      const who = principal(req);
      // Before anything is written; the address it resolves to is checked again at each delivery.
      assertUrlAllowed(outbound.webhookPolicy, 'url', req.body.url);
      const out = await db.transaction(async (trx) => {
        await claimIdempotency(trx, clock, req.idem, config.idempotencyLockSeconds);
        const { endpoint, secret } = await createEndpoint(trx, clock, secrets, { tenantId: who.tenantId, ...req.body, actor: `api_key:${who.keyId}` });
        await completeIdempotency(trx, clock, req.idem, 201, { ...endpointJson(endpoint), secret: '(shown once)' });
        return { ...endpointJson(endpoint), secret };
      });
      return reply.code(201).send(out);
    },
  );

  app.get(
    '/v1/webhook-endpoints',
    {
      config: { roles: admin },
      schema: { tags: ['webhooks'], summary: 'List webhook endpoints', querystring: listQuery(), response: { 200: ListOf(Endpoint), ...errorResponses } },
    },
    async (req) =>
      paginate<EndpointRow, ReturnType<typeof endpointJson>>(
        db('webhook_endpoints')
          .where({ tenant_id: principal(req).tenantId })
          .whereNot({ status: 'removed' }),
        { ...req.query, table: 'webhook_endpoints' },
        endpointJson,
      ),
  );

  app.post(
    '/v1/webhook-endpoints/:id/remove',
    {
      config: { roles: admin, idempotent: true },
      schema: {
        tags: ['webhooks'],
        summary: 'Remove an endpoint; its queued deliveries stop',
        params: Type.Object({ id: Uuid }),
        response: { 200: Endpoint, ...errorResponses },
      },
    },
    async (req) => {
      const who = principal(req);
      return db.transaction(async (trx) => {
        await claimIdempotency(trx, clock, req.idem, config.idempotencyLockSeconds);
        const json = endpointJson(await removeEndpoint(trx, clock, who.tenantId, req.params.id, `api_key:${who.keyId}`));
        await completeIdempotency(trx, clock, req.idem, 200, json);
        return json;
      });
    },
  );

  app.get(
    '/v1/events',
    {
      config: { roles: readers },
      schema: {
        tags: ['webhooks'],
        summary: 'List events, newest first',
        querystring: listQuery({ type: Type.Optional(SafeLine({ maxLength: 50 })), object_id: Type.Optional(SafeLine({ maxLength: 100 })) }),
        response: { 200: ListOf(Event), ...errorResponses },
      },
    },
    async (req) => {
      const q = db('events').where({ tenant_id: principal(req).tenantId });
      if (req.query.type) q.andWhere({ type: req.query.type });
      if (req.query.object_id) q.andWhere({ object_id: req.query.object_id });
      return paginate<EventRow, ReturnType<typeof eventJson>>(q, { ...req.query, table: 'events' }, eventJson);
    },
  );

  const findEvent = async (tenantId: string, id: string) => {
    const e = (await db('events').where({ id, tenant_id: tenantId }).first()) as EventRow | undefined;
    if (!e) fail('FEEGATE_ERR_EVENT_NOT_FOUND');
    return e;
  };

  app.get(
    '/v1/events/:id',
    {
      config: { roles: readers },
      schema: { tags: ['webhooks'], summary: 'Retrieve an event', params: Type.Object({ id: Uuid }), response: { 200: Event, ...errorResponses } },
    },
    async (req) => eventJson(await findEvent(principal(req).tenantId, req.params.id)),
  );

  app.get(
    '/v1/events/:id/attempts',
    {
      config: { roles: readers },
      schema: {
        tags: ['webhooks'],
        summary: 'Every delivery attempt of an event (status, latency, response excerpt)',
        params: Type.Object({ id: Uuid }),
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(Attempt) }), ...errorResponses },
      },
    },
    async (req) => {
      const e = await findEvent(principal(req).tenantId, req.params.id);
      const rows = (await db('webhook_attempts').where({ event_id: e.id }).orderBy('id')) as {
        endpoint_id: string;
        attempt: number;
        status_code: number | null;
        latency_ms: number;
        response_excerpt: string;
        error: string | null;
        outcome: string;
        created_at: Date;
      }[];
      return {
        object: 'list' as const,
        data: rows.map((r) => ({
          endpoint_id: r.endpoint_id,
          attempt: r.attempt,
          status_code: r.status_code,
          latency_ms: r.latency_ms,
          response_excerpt: r.response_excerpt,
          error: r.error,
          outcome: r.outcome,
          created_at: r.created_at.toISOString(),
        })),
      };
    },
  );

  app.post(
    '/v1/events/:id/resend',
    {
      config: { roles: admin, idempotent: true },
      schema: {
        tags: ['webhooks'],
        summary: 'Deliver an event again to every enabled endpoint that wants it',
        params: Type.Object({ id: Uuid }),
        response: { 200: Type.Object({ queued: Type.Integer() }), ...errorResponses },
      },
    },
    async (req) => {
      const who = principal(req);
      const e = await findEvent(who.tenantId, req.params.id);
      return db.transaction(async (trx) => {
        await claimIdempotency(trx, clock, req.idem, config.idempotencyLockSeconds);
        const endpoints = (await trx('webhook_endpoints')
          .where({ tenant_id: who.tenantId, status: 'enabled' })
          .andWhere((q) => q.whereRaw('? = ANY(events)', [e.type]).orWhereRaw(`'*' = ANY(events)`))
          .select('id')) as { id: string }[];
        for (const ep of endpoints) {
          await enqueue(trx, clock, { tenantId: who.tenantId, kind: DELIVER, payload: { event_id: e.id, endpoint_id: ep.id, resend: true } });
        }
        const out = { queued: endpoints.length };
        await completeIdempotency(trx, clock, req.idem, 200, out);
        return out;
      });
    },
  );

  app.get(
    '/v1/outbox/dead',
    {
      config: { roles: admin },
      schema: {
        tags: ['ops'],
        summary: 'Outbox rows that kept failing, with their last error',
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(DeadRow) }), ...errorResponses },
      },
    },
    async (req) => ({
      object: 'list' as const,
      data: (await deadRows(db, principal(req).tenantId)).map((r) => ({
        id: String(r.id),
        kind: r.kind,
        attempts: r.attempts,
        last_error: r.last_error,
        payload: r.payload,
        created_at: r.created_at.toISOString(),
      })),
    }),
  );

  app.post(
    '/v1/outbox/:id/requeue',
    {
      config: { roles: admin },
      schema: {
        tags: ['ops'],
        summary: 'Put a dead outbox row back in the queue',
        params: Type.Object({ id: Type.String({ pattern: '^[0-9]{1,18}$' }) }),
        response: { 200: Type.Object({ id: Type.String(), status: Type.String() }), ...errorResponses },
      },
    },
    async (req) => {
      const row = await requeue(db, clock, req.params.id, principal(req).tenantId);
      if (!row) fail('FEEGATE_ERR_OUTBOX_ROW_NOT_FOUND');
      return { id: String(row.id), status: row.status };
    },
  );
};
