/** Wires gateway/http/idempotency.ts into fastify for routes with `config.idempotent`. */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { FeegateError } from '../errors.js';
import { parseKey } from '../secrets/secret-box.js';
import { completeWithError, fingerprint, fingerprintKey, legacyFingerprint, validKey } from './idempotency.js';
import './fastify-types.js';

/** Errors that are never the key's answer (they describe the key, not the request). */
const NOT_STORED = new Set(['FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS', 'FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED', 'FEEGATE_ERR_RATE_LIMITED']);

export const idempotencyPlugin = fp(async (app: FastifyInstance) => {
  app.decorateRequest('idem', undefined);
  let serverKey: Buffer | undefined;
  const key = () => (serverKey ??= fingerprintKey(parseKey(app.deps.config.masterKey!)));

  // No database work here: the handler claims the key in its own first transaction.
  app.addHook('preHandler', async (req) => {
    if (!req.routeOptions.config.idempotent || !req.principal) return;
    const raw = req.headers['idempotency-key'];
    if (raw === undefined) return;
    const idemKey = Array.isArray(raw) ? (raw[0] ?? '') : raw;
    if (!validKey(idemKey)) throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_KEY_INVALID');
    const path = req.url.split('?')[0]!;
    const { method, body } = req;
    req.idem = {
      tenantId: req.principal.tenantId,
      key: idemKey,
      method,
      path,
      fingerprint: fingerprint(key(), method, path, body),
      legacyFingerprint: () => legacyFingerprint(method, path, body),
      completed: false,
    };
  });

  // A business error (4xx) is the key's answer only when the request began executing: its claim
  // committed, with what it wrote (Stripe). A refusal before that (the bill's state, a payment in
  // flight, a race) rolled its claim back and stores nothing: a retry once it is resolved runs.
  app.addHook('onSend', async (req, reply, payload) => {
    const ctx = req.idem;
    if (!ctx || ctx.completed || !ctx.claimToken || reply.statusCode < 400 || reply.statusCode >= 500 || typeof payload !== 'string') return payload;
    let code: string | undefined;
    try {
      code = (JSON.parse(payload) as { error?: { code?: string } } | null)?.error?.code;
    } catch {
      return payload;
    }
    if (!code || NOT_STORED.has(code)) return payload;
    await completeWithError(app.deps.db, ctx, reply.statusCode, payload);
    return payload;
  });
});
