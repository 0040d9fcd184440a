/**
 * One error shape for every failure: { "error": { "code", "message", "details" } }, with the
 * stable codes of gateway/errors.ts. fastify's own errors (validation, parsing, size) are mapped.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { FeegateError, type ErrorCode } from '../errors.js';
import { IdempotencyRaceError, answerFromKey } from './idempotency.js';
import { RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../db/unavailable.js';

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
  const raw = (err.validation ?? []) as AjvIssue[];
  const fieldOf = (v: AjvIssue) => {
    const key = v.params?.propertyName === undefined ? '' : `[${JSON.stringify(v.params.propertyName)}]`;
    return `${err.validationContext ?? 'body'}${(v.instancePath ?? '').replace(/\//g, '.')}${key}`;
  };
  const issues = raw.map((v) => ({
    field: fieldOf(v),
    problem: v.keyword === 'additionalProperties' ? `unknown property ${String(v.params?.additionalProperty)}` : (v.message ?? 'invalid'),
  }));
  // The code names the kind of problem when all issues share one; a key's issue comes twice
  // (its own keyword, then ajv's "propertyNames" wrapper): the wrapper does not decide.
  const deciding = raw.filter((v) => v.keyword !== 'propertyNames');
  const all = (test: (v: AjvIssue) => boolean) => deciding.length > 0 && deciding.every(test);
  const format = (v: AjvIssue) => (v.keyword === 'format' ? String(v.params?.format) : '');
  let code: ErrorCode = 'FEEGATE_ERR_VALIDATION';
  if (all((v) => /amount$/.test(fieldOf(v)))) code = 'FEEGATE_ERR_AMOUNT_INVALID';
  else if (all((v) => fieldOf(v) === 'querystring.cursor')) code = 'FEEGATE_ERR_CURSOR_INVALID';
  else if (all((v) => format(v) === 'feegate-date')) code = 'FEEGATE_ERR_DATE_INVALID';
  else if (all((v) => /^feegate-(text|line|name)$/.test(format(v)))) code = 'FEEGATE_ERR_TEXT_INVALID';
  return new FeegateError(code, undefined, { issues });
}

/**
 * Errors fastify meets before any route runs (fastify's `frameworkErrors` option): a URL that does
 * not decode (`%E0%A4`) or a path parameter above maxParamLength. Same body shape as every error.
 */
export function frameworkErrors(error: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const url = error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH';
  const err = new FeegateError(url ? 'FEEGATE_ERR_URL_INVALID' : 'FEEGATE_ERR_INTERNAL');
  if (!url) reply.log.error({ err: error }, 'framework error');
  void reply.code(err.statusCode).type('application/json; charset=utf-8').send(err.toJSON());
}

/**
 * Node's HTTP parser refused the request (bad header bytes, broken framing, headers too large, too
 * slow): there is no request object, so the answer is written on the socket, in our error shape,
 * and the connection closed, as Node and fastify's own default do (fastify's `clientErrorHandler`).
 */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'FEEGATE_ERR_HEADERS_TOO_LARGE'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'FEEGATE_ERR_REQUEST_TIMEOUT'
        : 'FEEGATE_ERR_MALFORMED_REQUEST';
  const e = new FeegateError(code);
  const body = JSON.stringify(e.toJSON());
  this.log.debug({ err }, 'client error');
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${e.statusCode} ${http.STATUS_CODES[e.statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
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
    } else if (isDatabaseUnavailable(error)) {
      // An outage, not a bug: say so, and when to come back. Nothing was done that a retry with
      // the same Idempotency-Key cannot finish.
      req.log.warn({ err: error }, 'database unavailable');
      reply.header('retry-after', String(RETRY_AFTER_SECONDS));
      err = new FeegateError('FEEGATE_ERR_SERVICE_UNAVAILABLE', 'The database does not answer; retry later');
    } else {
      req.log.error({ err: error }, 'unhandled error');
      err = new FeegateError('FEEGATE_ERR_INTERNAL');
    }
    if (err.statusCode >= 500 && error instanceof FeegateError) req.log.error({ err: error }, err.message);
    return reply.code(err.statusCode).send(err.toJSON());
  });
});
