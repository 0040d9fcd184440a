/**
 * The request id: the caller's X-Request-Id when it is a plain token, a fresh UUID otherwise. It is
 * echoed in a response header and written in every log line of the request, so a caller's value
 * must not be able to break either (CR/LF, NUL, other control or non-ASCII bytes) or bloat them.
 */
import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(req: IncomingMessage): string {
  const raw = req.headers['x-request-id'];
  return typeof raw === 'string' && SAFE_REQUEST_ID.test(raw) ? raw : crypto.randomUUID();
}
