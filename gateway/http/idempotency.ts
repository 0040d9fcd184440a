/**
 * Idempotency-Key with Stripe's semantics, on every mutating endpoint:
 * - the result of a request that began executing (its claim of the key committed) is stored and
 *   replayed for the same key, its body byte for byte (kept as the text that was sent);
 * - refusals before that (validation, a conflict with the state of the bill or payment, a request
 *   racing another) are not stored: once the conflict is gone, a retry with the key runs;
 * - the same key with other parameters is a 422 (FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED);
 * - a request racing one still in flight with the same key is a 409 (FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS);
 * - keys are kept at least 24 hours.
 * The parameters are compared by an HMAC under a server key derived from the master key, never a
 * plain hash: bodies carry provider secrets, and a bare SHA-256 of a low-entropy secret can be
 * searched offline by whoever reads the table.
 *
 * The key is claimed by one statement inside the handler's first transaction and completed in its
 * last, so idempotency costs no extra commit and no look-up on the happy path. A claim that
 * outlived a crashed process is taken over once its lock expires, and the handler resumes from the
 * recovery point it recorded (Brandur Leach's "idempotency keys with recovery points"). When the
 * claim finds the key taken, the request is answered from what the key holds: a replay, a 422 or
 * a 409.
 */
import crypto from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Db, Trx } from '../db/knex.js';
import { prepared } from '../db/prepared.js';
import type { Clock } from '../clock.js';
import { FeegateError } from '../errors.js';

export const IDEMPOTENCY_RETENTION_HOURS = 48;

export interface IdemContext {
  tenantId: string;
  key: string;
  method: string;
  path: string;
  fingerprint: string;
  completed: boolean;
  /** The unkeyed SHA-256 of keys stored before fingerprints were keyed (compared, never stored). */
  legacyFingerprint?: () => string;
  /** Set by the claim: names this request's claim, so only it completes the key. */
  claimToken?: string;
}

interface IdemRow {
  fingerprint: string;
  status: 'in_flight' | 'done';
  locked_until: Date | null;
  recovery: Record<string, unknown> | null;
  response_status: number | null;
  /** The body as the text that was sent. */
  response_body: string | null;
}

/** Thrown when another request claimed the key between our look-up and our claim. */
export class IdempotencyRaceError extends Error {
  constructor() {
    super('idempotency key claimed concurrently');
  }
}

export function validKey(key: string): boolean {
  return key.length >= 1 && key.length <= 255 && /^[\x21-\x7e]+$/.test(key);
}

/** The server key of fingerprints: HKDF-SHA-256 of the master key, for this purpose only. */
export function fingerprintKey(masterKey: Buffer): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', masterKey, Buffer.alloc(0), 'feegate idempotency fingerprint v1', 32));
}

const PREFIX = 'h1:';

/** HMAC-SHA-256 of the method, path and canonical JSON body (RFC 8785), under the server key. */
export function fingerprint(serverKey: Buffer, method: string, path: string, body: unknown): string {
  return (
    PREFIX +
    crypto
      .createHmac('sha256', serverKey)
      .update(`${method} ${path}\n${canonicalize(body ?? null) ?? ''}`)
      .digest('hex')
  );
}

/**
 * Whether a stored fingerprint names these parameters. Keys written before fingerprints were
 * keyed (a bare SHA-256, kept at most the 48 h of retention) are compared in memory, never stored.
 */
function sameParameters(stored: string, fp: string, legacy: () => string): boolean {
  return stored.startsWith(PREFIX) ? stored === fp : stored === legacy();
}

export function legacyFingerprint(method: string, path: string, body: unknown): string {
  return crypto
    .createHash('sha256')
    .update(`${method} ${path}\n${canonicalize(body ?? null) ?? ''}`)
    .digest('hex');
}

/**
 * The answer a taken key gives: its stored response, or the 422/409 error it stands for.
 * (Called when a claim did not succeed.)
 */
export async function answerFromKey(
  db: Db,
  tenantId: string,
  key: string,
  fp: string,
  legacy: () => string = () => '',
): Promise<{ status: number; body: string }> {
  const row = (await db('idempotency_keys').where({ tenant_id: tenantId, key }).first()) as IdemRow | undefined;
  if (row && !sameParameters(row.fingerprint, fp, legacy)) throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED');
  if (row?.status === 'done') return { status: row.response_status ?? 200, body: row.response_body ?? 'null' };
  throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS');
}

/**
 * Claims the key, first thing in the handler's first transaction, in one statement: a new key is
 * inserted; a key left in flight by a crashed request (lock expired, same parameters) is taken
 * over and its recovery point returned. Any other state throws IdempotencyRaceError, which the
 * error handler turns into the key's answer (answerFromKey).
 */
export async function claimIdempotency(trx: Trx, clock: Clock, ctx: IdemContext | undefined, lockSeconds: number): Promise<Record<string, unknown> | null> {
  if (!ctx) return null;
  const now = clock.now();
  const lockedUntil = new Date(now.getTime() + lockSeconds * 1000);
  const token = crypto.randomUUID();
  const { rows } = (await prepared(
    trx,
    `INSERT INTO idempotency_keys AS k (tenant_id, key, method, path, fingerprint, status, locked_until, claim_token, created_at)
     VALUES (?, ?, ?, ?, ?, 'in_flight', ?, ?, ?)
     ON CONFLICT (tenant_id, key) DO UPDATE SET locked_until = EXCLUDED.locked_until, claim_token = EXCLUDED.claim_token
       WHERE k.status = 'in_flight' AND k.locked_until <= ? AND k.fingerprint = EXCLUDED.fingerprint
     RETURNING k.recovery`,
    [ctx.tenantId, ctx.key, ctx.method, ctx.path, ctx.fingerprint, lockedUntil, token, now, now],
  )) as { rows: { recovery: Record<string, unknown> | null }[] };
  if (rows.length === 0) throw new IdempotencyRaceError();
  ctx.claimToken = token;
  return rows[0]!.recovery;
}

/** Records how far the handler got, so a retry after a crash resumes instead of redoing. */
export async function setRecoveryPoint(trx: Trx, ctx: IdemContext | undefined, recovery: Record<string, unknown>): Promise<void> {
  if (!ctx) return;
  await trx('idempotency_keys')
    .where({ tenant_id: ctx.tenantId, key: ctx.key })
    .update({ recovery: JSON.stringify(recovery) });
}

/** Stores the response in the handler's last transaction, with what it wrote. */
export async function completeIdempotency(trx: Trx | Db, clock: Clock, ctx: IdemContext | undefined, status: number, body: unknown): Promise<void> {
  if (!ctx || ctx.completed) return;
  await trx.raw(
    `INSERT INTO idempotency_keys (tenant_id, key, method, path, fingerprint, status, response_status, response_body, created_at)
     VALUES (?, ?, ?, ?, ?, 'done', ?, ?, ?)
     ON CONFLICT (tenant_id, key) DO UPDATE
       SET status = 'done', response_status = excluded.response_status, response_body = excluded.response_body, locked_until = NULL
     WHERE idempotency_keys.status = 'in_flight' AND idempotency_keys.fingerprint = excluded.fingerprint`,
    [ctx.tenantId, ctx.key, ctx.method, ctx.path, ctx.fingerprint, status, JSON.stringify(body ?? null), clock.now()],
  );
  ctx.completed = true;
}

/**
 * Stores an error the handler answered after its claim committed (it began executing: what it
 * wrote stays, and a retry must get the same answer). A refusal whose transaction rolled back has
 * no committed claim of this request's token, and stores nothing. `body` is the text sent.
 */
export async function completeWithError(db: Db, ctx: IdemContext, status: number, body: string): Promise<boolean> {
  if (ctx.completed || !ctx.claimToken) return false;
  const n = await db('idempotency_keys')
    .where({ tenant_id: ctx.tenantId, key: ctx.key, status: 'in_flight', claim_token: ctx.claimToken })
    .update({ status: 'done', response_status: status, response_body: body, locked_until: null });
  ctx.completed = true;
  return n > 0;
}

/**
 * The UPDATE that completes a key this transaction claimed, for a handler that folds it into one
 * of its own statements (as a CTE). Null without a key.
 */
export function idempotencyCompletion(
  ctx: IdemContext | undefined,
  status: number,
  body: unknown,
): { sql: string; bindings: string[] | (string | number)[] } | null {
  if (!ctx) return null;
  return {
    sql: `UPDATE idempotency_keys SET status = 'done', response_status = ?, response_body = ?, locked_until = NULL
          WHERE tenant_id = ? AND key = ? AND status = 'in_flight'`,
    bindings: [status, JSON.stringify(body ?? null), ctx.tenantId, ctx.key],
  };
}

/** Deletes keys past retention. Returns how many. */
export async function pruneIdempotencyKeys(db: Db, clock: Clock): Promise<number> {
  const cutoff = new Date(clock.now().getTime() - IDEMPOTENCY_RETENTION_HOURS * 3600 * 1000);
  return db('idempotency_keys').where('created_at', '<', cutoff).andWhere({ status: 'done' }).del();
}
