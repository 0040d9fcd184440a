/**
 * The transactional outbox. A row is written in the same transaction as the change that causes
 * it (enqueue, or a CTE in a statement that writes the change). Workers claim due rows with
 * FOR UPDATE SKIP LOCKED and a lease (lease_token, locked_until), run them outside any database
 * transaction, then complete, reschedule (growing backoff) or park them as dead. The same code
 * runs in one process on PGlite and in N processes on one PostgreSQL.
 *
 * Guarantees: a row whose handler does its work in the database and completes the row in the
 * same transaction (completeRow checks the lease) takes effect exactly once. A row whose handler
 * talks to the network (a webhook) runs at least once; receivers dedupe on the event id.
 *
 * Rows are claimed in lanes (lanes.ts): webhook deliveries apart from the work in our database,
 * so no receipt ever waits behind someone else's slow server.
 */
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import type { Deps } from '../deps.js';
import { LANES, claimDeliveries, claimDue, claimWork, deliveryLeaseSeconds, type Lane } from './lanes.js';

export interface OutboxRow {
  id: string | number;
  tenant_id: string | null;
  kind: string;
  payload: Record<string, unknown>;
  dedupe_key: string | null;
  status: 'pending' | 'done' | 'dead' | 'cancelled';
  attempts: number;
  run_at: Date;
  lease_token: string | null;
  locked_until: Date | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  done_at: Date | null;
}

export type HandlerResult =
  /** Done: the worker completes the row. */
  | { done: true }
  /** The handler completed the row itself, in the transaction of its work (completeRow). */
  | { completed: true }
  /** Try again later (the worker applies the handler's backoff; past maxAttempts the row is dead). */
  | { retry: string }
  /** Stop: nothing more to do (for example, the webhook endpoint was removed). */
  | { cancel: string };

export interface OutboxHandler {
  kind: string;
  /** Seconds to wait after the n-th failed attempt (1-based); past the list's end the row is dead. */
  backoffSeconds: number[];
  run(row: OutboxRow, deps: Deps): Promise<HandlerResult>;
  /**
   * Optional: do the work of many claimed rows and complete them in one transaction (rows whose
   * lease was lost are left alone). If it throws, the rows run one by one through run().
   */
  runBatch?(rows: OutboxRow[], deps: Deps): Promise<void>;
}

export const DEFAULT_BACKOFF = [10, 30, 60, 300, 900, 3600, 3600];

export interface NewOutboxRow {
  tenantId: string | null;
  kind: string;
  payload: Record<string, unknown>;
  dedupeKey?: string;
  runAt?: Date;
}

export function outboxRow(clock: Clock, r: NewOutboxRow) {
  const now = clock.now();
  return {
    tenant_id: r.tenantId,
    kind: r.kind,
    payload: JSON.stringify(r.payload),
    dedupe_key: r.dedupeKey ?? null,
    status: 'pending',
    run_at: r.runAt ?? now,
    created_at: now,
    updated_at: now,
  };
}

/** Enqueues in the caller's transaction. A row with a dedupe key already queued is not queued again. */
export async function enqueue(trx: Trx, clock: Clock, r: NewOutboxRow): Promise<void> {
  const q = trx('outbox').insert(outboxRow(clock, r));
  await (r.dedupeKey ? q.onConflict('dedupe_key').ignore() : q);
}

/** Claims up to `limit` due rows for this worker (lease), skipping rows other workers hold; of some kinds only, if given. */
export function claimBatch(db: Db, clock: Clock, limit: number, leaseSeconds: number, kinds?: string[]): Promise<OutboxRow[]> {
  return kinds ? claimDue(db, clock, limit, leaseSeconds, 'kind = ANY(?)', [kinds]) : claimDue(db, clock, limit, leaseSeconds);
}

export class LeaseLostError extends Error {
  constructor(id: string | number) {
    super(`outbox row ${id}: lease lost to another worker`);
  }
}

/** Marks claimed rows done, inside the transaction of their work (one statement). Throws if any lease was lost. */
export async function completeRows(trx: Trx | Db, clock: Clock, rows: readonly OutboxRow[]): Promise<void> {
  if (rows.length === 0) return;
  const now = clock.now();
  const { rows: done } = (await trx.raw(
    `UPDATE outbox o SET status = 'done', done_at = ?, updated_at = ?, lease_token = NULL, locked_until = NULL
       FROM jsonb_to_recordset(?::jsonb) AS r(id bigint, lease uuid)
      WHERE o.id = r.id AND o.lease_token = r.lease AND o.status = 'pending' RETURNING o.id`,
    [now, now, JSON.stringify(rows.map((r) => ({ id: r.id, lease: r.lease_token })))],
  )) as { rows: { id: string | number }[] };
  if (done.length !== rows.length) {
    const ok = new Set(done.map((d) => String(d.id)));
    throw new LeaseLostError(rows.find((r) => !ok.has(String(r.id)))!.id);
  }
}

/** Marks a claimed row done, inside the transaction of its work. Throws if our lease was lost. */
export const completeRow = (trx: Trx | Db, clock: Clock, row: OutboxRow): Promise<void> => completeRows(trx, clock, [row]);

async function finish(db: Db, clock: Clock, row: OutboxRow, patch: Record<string, unknown>): Promise<void> {
  await db('outbox')
    .where({ id: row.id, lease_token: row.lease_token, status: 'pending' })
    .update({ ...patch, updated_at: clock.now(), lease_token: null, locked_until: null });
}

/** Runs one claimed row through its handler and records the outcome. */
export async function runRow(deps: Deps, handlers: Map<string, OutboxHandler>, row: OutboxRow): Promise<string> {
  const { db, clock } = deps;
  const handler = handlers.get(row.kind);
  let result: HandlerResult;
  try {
    result = handler ? await handler.run(row, deps) : { retry: `no handler for kind ${row.kind}` };
  } catch (err) {
    if (err instanceof LeaseLostError) return 'lease_lost';
    result = { retry: (err as Error)?.message ?? String(err) };
  }
  if ('completed' in result) return 'done';
  if ('done' in result) {
    await finish(db, clock, row, { status: 'done', done_at: clock.now(), last_error: null });
    return 'done';
  }
  if ('cancel' in result) {
    await finish(db, clock, row, { status: 'cancelled', done_at: clock.now(), last_error: result.cancel });
    return 'cancelled';
  }
  const schedule = handler?.backoffSeconds ?? DEFAULT_BACKOFF;
  const wait = schedule[row.attempts - 1];
  if (wait === undefined) {
    await finish(db, clock, row, { status: 'dead', last_error: result.retry });
    deps.metrics.outboxDead.inc({ kind: row.kind });
    return 'dead';
  }
  await finish(db, clock, row, { run_at: new Date(clock.now().getTime() + wait * 1000), last_error: result.retry });
  return 'retry';
}

export interface DrainOptions {
  /** Rows claimed at once (deliveries: at most the lane's per-endpoint limit from each endpoint). */
  batch?: number;
  maxRows?: number;
  concurrency?: number;
  /** One lane only; by default both, until neither has a row due. */
  lane?: Lane;
}

/** Claims and runs due rows until none are due (or `maxRows`). Returns how many ran. */
export async function drainOutbox(deps: Deps, handlers: Map<string, OutboxHandler>, opts: DrainOptions = {}): Promise<number> {
  if (opts.lane) return drainLane(deps, handlers, opts.lane, opts);
  const max = opts.maxRows ?? 10_000;
  let ran = 0;
  for (;;) {
    let n = 0;
    for (const lane of LANES) {
      if (ran + n < max) n += await drainLane(deps, handlers, lane, { ...opts, maxRows: max - ran - n });
    }
    ran += n;
    if (n === 0 || ran >= max) return ran;
  }
}

function claimFor(deps: Deps, lane: Lane, limit: number): Promise<OutboxRow[]> {
  const { db, clock, config } = deps;
  if (lane === 'work') return claimWork(db, clock, limit, config.leaseSeconds);
  return claimDeliveries(db, clock, { limit, perEndpoint: config.webhookEndpointConcurrency, leaseSeconds: deliveryLeaseSeconds(config) });
}

async function drainLane(deps: Deps, handlers: Map<string, OutboxHandler>, lane: Lane, opts: DrainOptions): Promise<number> {
  const batch = opts.batch ?? 50;
  const max = opts.maxRows ?? 10_000;
  const concurrency = opts.concurrency ?? 8;
  let ran = 0;
  while (ran < max) {
    const claimed = await claimFor(deps, lane, Math.min(batch, max - ran));
    if (claimed.length === 0) break;
    await runClaimed(deps, handlers, claimed, concurrency);
    ran += claimed.length;
  }
  return ran;
}

/** Runs claimed rows: each kind's rows as one batch where its handler can, the rest `concurrency` at a time. */
async function runClaimed(deps: Deps, handlers: Map<string, OutboxHandler>, claimed: OutboxRow[], concurrency: number): Promise<void> {
  const rows: OutboxRow[] = [];
  const byKind = new Map<string, OutboxRow[]>();
  for (const r of claimed) byKind.set(r.kind, [...(byKind.get(r.kind) ?? []), r]);
  for (const [kind, group] of byKind) {
    const handler = handlers.get(kind);
    if (handler?.runBatch && group.length > 1) {
      try {
        await handler.runBatch(group, deps);
        continue;
      } catch {
        deps.metrics.outboxBatchFallbacks.inc({ kind }); // then one by one below
      }
    }
    rows.push(...group);
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, rows.length) }, async () => {
      while (next < rows.length) await runRow(deps, handlers, rows[next++]!);
    }),
  );
}

/** Dead rows of a tenant (or all), with their last error. */
export async function deadRows(db: Db, tenantId: string | null, limit = 100): Promise<OutboxRow[]> {
  const q = db('outbox').where({ status: 'dead' }).orderBy('id', 'desc').limit(limit);
  if (tenantId) q.andWhere({ tenant_id: tenantId });
  return (await q) as OutboxRow[];
}

/** Puts a dead row back in the queue, due now, with a fresh attempt count. */
export async function requeue(db: Db, clock: Clock, id: string | number, tenantId: string | null): Promise<OutboxRow | undefined> {
  const q = db('outbox').where({ id, status: 'dead' });
  if (tenantId) q.andWhere({ tenant_id: tenantId });
  const [row] = (await q.update({ status: 'pending', attempts: 0, run_at: clock.now(), updated_at: clock.now() }).returning('*')) as OutboxRow[];
  return row;
}
