/**
 * One error shape for every failure: { "error": { "code", "message", "details" } }, with the
 * stable codes of gateway/errors.ts. fastify's own errors (validation, parsing, size) are mapped.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { FeegateError, type ErrorCode } from '../errors.js';
import { IdempotencyRaceError, answerFromKey } from './idempotency.js';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'FEEGATE_ERR_MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'FEEGATE_ERR_MALFORMED_BODY',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'FEEGATE_ERR_MALFORMED_BODY',
  FST_ERR_CTP_BODY_TOO_LARGE: 'FEEGATE_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'FEEGATE_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_TYPE: 'FEEGATE_ERR_UNSUPPORTED_MEDIA_TYPE',
};

interface AjvIssue {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

function validationError(err: FastifyError): FeegateError {
  const issues = ((err.validation ?? []) as AjvIssue[]).map((v) => ({
    field: `${err.validationContext ?? 'body'}${(v.instancePath ?? '').replace(/\//g, '.')}`,
    problem: v.keyword === 'additionalProperties' ? `unknown property ${String(v.params?.additionalProperty)}` : v.message ?? 'invalid',
  }));
  const amountOnly = issues.length > 0 && issues.every((i) => /amount$/.test(i.field));
  return new FeegateError(amountOnly ? 'FEEGATE_ERR_AMOUNT_INVALID' : 'FEEGATE_ERR_VALIDATION', undefined, { issues });
}

export const errorHandlerPlugin = fp(async (app: FastifyInstance) => {
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new FeegateError('FEEGATE_ERR_NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`).toJSON());
  });

  app.setErrorHandler(async (error: FastifyError, req, reply) => {
    let err: FeegateError;
    if (error instanceof FeegateError) {
      err = error;
    } else if (error instanceof IdempotencyRaceError && req.idem) {
      // Someone else claimed the key first: answer as if we had arrived after them.
      try {
        const found = await answerFromKey(app.deps.db, req.idem.tenantId, req.idem.key, req.idem.fingerprint, req.idem.legacyFingerprint);
        req.idem.completed = true;
        // The stored text, byte for byte.
        return reply.code(found.status).header('idempotent-replayed', 'true').type('application/json; charset=utf-8').send(found.body);
      } catch (e) {
        err = e instanceof FeegateError ? e : new FeegateError('FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS');
      }
      req.idem.completed = true;
    } else if (error.validation) {
      err = validationError(error);
    } else if (error.code && FASTIFY_CODES[error.code]) {
      err = new FeegateError(FASTIFY_CODES[error.code]!, error.message);
    } else if (error.statusCode === 429) {
      err = new FeegateError('FEEGATE_ERR_RATE_LIMITED');
    } else if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
      err = new FeegateError('FEEGATE_ERR_MALFORMED_BODY', error.message);
    } else {
      req.log.error({ err: error }, 'unhandled error');
      err = new FeegateError('FEEGATE_ERR_INTERNAL');
    }
    if (err.statusCode >= 500 && error instanceof FeegateError) req.log.error({ err: error }, err.message);
    return reply.code(err.statusCode).send(err.toJSON());
  });
});
