/**
 * Idempotency-Key with Stripe's semantics, on every mutating endpoint:
 * - the first response (status and body) is stored and replayed for the same key;
 * - the same key with other parameters is a 422 (FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED);
 * - a request racing one still in flight with the same key is a 409 (FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS);
 * - requests rejected by validation are not stored; keys are kept at least 24 hours.
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
}

interface IdemRow {
  fingerprint: string;
  status: 'in_flight' | 'done';
  locked_until: Date | null;
  recovery: Record<string, unknown> | null;
  response_status: number | null;
  response_body: unknown;
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

export function fingerprint(method: string, path: string, body: unknown): string {
  return crypto
    .createHash('sha256')
    .update(`${method} ${path}\n${canonicalize(body ?? null) ?? ''}`)
    .digest('hex');
}

/**
 * The answer a taken key gives: its stored response, or the 422/409 error it stands for.
 * (Called when a claim did not succeed.)
 */
export async function answerFromKey(db: Db, tenantId: string, key: string, fp: string): Promise<{ status: number; body: unknown }> {
  const row = (await db('idempotency_keys').where({ tenant_id: tenantId, key }).first()) as IdemRow | undefined;
  if (row && row.fingerprint !== fp) throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED');
  if (row?.status === 'done') return { status: row.response_status ?? 200, body: row.response_body };
  throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS');
}

/**
 * Claims the key, first thing in the handler's first transaction, in one statement: a new key is
 * inserted; a key left in flight by a crashed request (lock expired, same parameters) is taken
 * over and its recovery point returned. Any other state throws IdempotencyRaceError, which the
 * error handler turns into the key's answer (answerFromKey).
 */
export async function claimIdempotency(
  trx: Trx,
  clock: Clock,
  ctx: IdemContext | undefined,
  lockSeconds: number,
): Promise<Record<string, unknown> | null> {
  if (!ctx) return null;
  const now = clock.now();
  const lockedUntil = new Date(now.getTime() + lockSeconds * 1000);
  const { rows } = (await prepared(
    trx,
    `INSERT INTO idempotency_keys AS k (tenant_id, key, method, path, fingerprint, status, locked_until, created_at)
     VALUES (?, ?, ?, ?, ?, 'in_flight', ?, ?)
     ON CONFLICT (tenant_id, key) DO UPDATE SET locked_until = EXCLUDED.locked_until
       WHERE k.status = 'in_flight' AND k.locked_until <= ? AND k.fingerprint = EXCLUDED.fingerprint
     RETURNING k.recovery`,
    [ctx.tenantId, ctx.key, ctx.method, ctx.path, ctx.fingerprint, lockedUntil, now, now],
  )) as { rows: { recovery: Record<string, unknown> | null }[] };
  if (rows.length === 0) throw new IdempotencyRaceError();
  return rows[0]!.recovery;
}

/** Records how far the handler got, so a retry after a crash resumes instead of redoing. */
export async function setRecoveryPoint(trx: Trx, ctx: IdemContext | undefined, recovery: Record<string, unknown>): Promise<void> {
  if (!ctx) return;
  await trx('idempotency_keys').where({ tenant_id: ctx.tenantId, key: ctx.key }).update({ recovery: JSON.stringify(recovery) });
}

/** Stores the response in the handler's last transaction (or on its own, for an early error). */
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
 * The UPDATE that completes a key this transaction claimed, for a handler that folds it into one
 * of its own statements (as a CTE). Null without a key.
 */
export function idempotencyCompletion(ctx: IdemContext | undefined, status: number, body: unknown): { sql: string; bindings: string[] | (string | number)[] } | null {
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
