/**
 * Is this error "the database is not there right now" (retry later), rather than a bug or a bad
 * statement? The API answers those 503 with Retry-After, and start-up waits for them to pass.
 * Drivers say it in different ways: Node socket codes, SQLSTATEs, pg's and PGlite's own messages,
 * knex's pool timeout; and knex or our own code may wrap the original in `cause`.
 */

/**
 * Socket-level failures reaching the server. ENOTFOUND is not here: a name that does not resolve
 * is a configuration error at run time (only start-up waits for it, see isDatabaseNotReadyYet).
 */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs of a server that is going away, refusing sessions or out of them
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html). Class 08 is checked apart.
 */
const SQLSTATES = new Set([
  '57P01', // admin_shutdown: pg_terminate_backend, a fast shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up, in recovery
  '57P05', // idle_session_timeout
  '53300', // too_many_connections
  '3D000', // invalid_catalog_name: the database is gone (or not created yet)
]);

/**
 * Messages that carry no code: pg's lost or closed connections, knex's pool after destroy(),
 * PGlite closed. `55000` (object_not_in_prerequisite_state) is only an outage with its
 * "not accepting connections" text (ALTER DATABASE … ALLOW_CONNECTIONS false); other 55000s are not.
 */
const MESSAGES =
  /Connection terminated|is not queryable|timeout exceeded when trying to connect|Unable to acquire a connection|PGlite is closed|is not currently accepting connections/;

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

function one(e: ErrorLike, startup: boolean): boolean {
  const code = typeof e.code === 'string' ? e.code : '';
  if (startup && code === 'ENOTFOUND') return true;
  if (SOCKET_CODES.has(code) || SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
  // Pool acquire timeout (and query timeouts): the database is too slow or too busy to answer now.
  if (e.name === 'KnexTimeoutError') return true;
  return typeof e.message === 'string' && MESSAGES.test(e.message);
}

function walk(err: unknown, startup: boolean): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length && seen.size < 16) {
    const e = queue.shift();
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const el = e as ErrorLike;
    if (one(el, startup)) return true;
    queue.push(el.cause);
    // AggregateError: Node's "happy eyeballs" connect tries ::1 and 127.0.0.1 and reports both.
    if (Array.isArray(el.errors)) queue.push(...el.errors);
  }
  return false;
}

export function isDatabaseUnavailable(err: unknown): boolean {
  return walk(err, false);
}

/**
 * At start-up a database host whose name does not resolve yet is also worth waiting for: in a
 * compose or Kubernetes deployment the name appears when the database's container does.
 */
export function isDatabaseNotReadyYet(err: unknown): boolean {
  return walk(err, true);
}

/** How long a client should wait before retrying (Retry-After, seconds). */
export const RETRY_AFTER_SECONDS = 5;
