/** Wires gateway/http/idempotency.ts into fastify for routes with `config.idempotent`. */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { FeegateError } from '../errors.js';
import { completeIdempotency, fingerprint, validKey } from './idempotency.js';
import './fastify-types.js';

/** Errors that must not be stored as the key's answer (they describe the key, not the request). */
const NOT_STORED = new Set(['FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS', 'FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED', 'FEEGATE_ERR_RATE_LIMITED']);

export const idempotencyPlugin = fp(async (app: FastifyInstance) => {
  app.decorateRequest('idem', undefined);

  // No database work here: the handler claims the key in its own first transaction.
  app.addHook('preHandler', async (req) => {
    if (!req.routeOptions.config.idempotent || !req.principal) return;
    const raw = req.headers['idempotency-key'];
    if (raw === undefined) return;
    const key = Array.isArray(raw) ? raw[0] ?? '' : raw;
    if (!validKey(key)) throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_KEY_INVALID');
    const path = req.url.split('?')[0]!;
    req.idem = {
      tenantId: req.principal.tenantId,
      key,
      method: req.method,
      path,
      fingerprint: fingerprint(req.method, path, req.body),
      completed: false,
    };
  });

  // A business error (4xx) thrown by the handler is the key's answer too, as with Stripe.
  app.addHook('onSend', async (req, reply, payload) => {
    const ctx = req.idem;
    if (!ctx || ctx.completed || reply.statusCode < 400 || reply.statusCode >= 500) return payload;
    let body: unknown = null;
    try {
      body = typeof payload === 'string' ? JSON.parse(payload) : null;
    } catch {
      return payload;
    }
    const code = (body as { error?: { code?: string } } | null)?.error?.code;
    if (!code || NOT_STORED.has(code)) return payload;
    await completeIdempotency(app.deps.db, app.deps.clock, ctx, reply.statusCode, body);
    return payload;
  });
});
