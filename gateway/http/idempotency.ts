/**
 * Idempotency-Key with Stripe's semantics, on every mutating endpoint:
 * - the first response (status and body) is stored and replayed for the same key;
 * - the same key with other parameters is a 422 (FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED);
 * - a request racing one still in flight with the same key is a 409 (FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS);
 * - requests rejected by validation are not stored; keys are kept at least 24 hours.
 *
 * The key is claimed inside the handler's first transaction and completed in its last, so a
 * payment costs no extra commits; a claim that outlived a crashed process can be taken over after
 * its lock expires, resuming from the recovery point the handler recorded (Brandur Leach's
 * "idempotency keys with recovery points").
 */
import crypto from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import { FeegateError } from '../errors.js';

export const IDEMPOTENCY_RETENTION_HOURS = 48;

export interface IdemContext {
  tenantId: string;
  key: string;
  method: string;
  path: string;
  fingerprint: string;
  mode: 'fresh' | 'recover';
  /** For 'recover': the lock we take over (compare-and-set). */
  lockedUntil?: Date;
  /** For 'recover': what the crashed attempt recorded. */
  recovery?: Record<string, unknown> | null;
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

export type Lookup =
  | { kind: 'new' }
  | { kind: 'replay'; status: number; body: unknown }
  | { kind: 'recover'; lockedUntil: Date; recovery: Record<string, unknown> | null };

/** What to do with a request carrying this key. Throws the 409/422 errors. */
export async function lookupIdempotency(db: Db, clock: Clock, tenantId: string, key: string, fp: string): Promise<Lookup> {
  const row = (await db('idempotency_keys').where({ tenant_id: tenantId, key }).first()) as IdemRow | undefined;
  if (!row) return { kind: 'new' };
  if (row.fingerprint !== fp) throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED');
  if (row.status === 'done') return { kind: 'replay', status: row.response_status ?? 200, body: row.response_body };
  if (row.locked_until && row.locked_until.getTime() > clock.now().getTime()) {
    throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS');
  }
  return { kind: 'recover', lockedUntil: row.locked_until ?? new Date(0), recovery: row.recovery };
}

/** Claims the key inside the handler's first transaction. */
export async function claimIdempotency(trx: Trx, clock: Clock, ctx: IdemContext | undefined, lockSeconds: number): Promise<void> {
  if (!ctx) return;
  const now = clock.now();
  const lockedUntil = new Date(now.getTime() + lockSeconds * 1000);
  if (ctx.mode === 'fresh') {
    const rows = await trx.raw(
      `INSERT INTO idempotency_keys (tenant_id, key, method, path, fingerprint, status, locked_until, created_at)
       VALUES (?, ?, ?, ?, ?, 'in_flight', ?, ?) ON CONFLICT (tenant_id, key) DO NOTHING RETURNING key`,
      [ctx.tenantId, ctx.key, ctx.method, ctx.path, ctx.fingerprint, lockedUntil, now],
    );
    if ((rows as { rows: unknown[] }).rows.length === 0) throw new IdempotencyRaceError();
  } else {
    const n = await trx('idempotency_keys')
      .where({ tenant_id: ctx.tenantId, key: ctx.key, status: 'in_flight', locked_until: ctx.lockedUntil ?? null })
      .update({ locked_until: lockedUntil });
    if (n === 0) throw new IdempotencyRaceError();
  }
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

/** Deletes keys past retention. Returns how many. */
export async function pruneIdempotencyKeys(db: Db, clock: Clock): Promise<number> {
  const cutoff = new Date(clock.now().getTime() - IDEMPOTENCY_RETENTION_HOURS * 3600 * 1000);
  return db('idempotency_keys').where('created_at', '<', cutoff).andWhere({ status: 'done' }).del();
}
