/**
 * Lanes of the outbox. Rows are claimed in two lanes that never wait for each other:
 * - `work`: everything done in our own database (receipts, event fan-outs, …), claimed in
 *   batches, each batch in one transaction where the handler can;
 * - `deliveries`: webhook deliveries, which wait on other people's servers. An endpoint has at
 *   most `perEndpoint` rows leased at once, across every process: its other rows stay unclaimed
 *   (no lease, nothing held) until one of its requests ends, so one slow endpoint takes at most
 *   that many of the lane's slots and none of the work lane's.
 * The lane is a function of the row's kind. The conditions are literal SQL that match the partial
 * indexes of migration 0013 (the planner uses a partial index only when the query states its
 * condition), so neither lane scans past the other's rows.
 */
import type { Knex } from 'knex';
import type { Db } from '../db/knex.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { OutboxRow } from './outbox.js';

export const LANES = ['work', 'deliveries'] as const;
export type Lane = (typeof LANES)[number];

/** The kind of the delivery lane's rows (webhooks/handlers.ts DELIVER; the indexes name it too). */
export const DELIVERY_KIND = 'webhook.deliver';

const WORK_LANE = `kind <> '${DELIVERY_KIND}'`;
const DELIVERY_LANE = `status = 'pending' AND kind = '${DELIVERY_KIND}'`;

/** One claim of deliveries at a time across every process, so the per-endpoint count is exact. */
const DELIVERY_CLAIM_LOCK = 'feegate:outbox:delivery-claims';

/**
 * Leases up to `limit` due rows matching `condition` (literal SQL, or with its own bindings),
 * skipping rows other workers hold: the one claim statement of the outbox.
 */
export async function claimDue(
  db: Db,
  clock: Clock,
  limit: number,
  leaseSeconds: number,
  condition = 'TRUE',
  bindings: Knex.Value[] = [],
): Promise<OutboxRow[]> {
  const now = clock.now();
  const { rows } = (await db.raw(
    `UPDATE outbox o SET lease_token = gen_random_uuid(), locked_until = ?, attempts = o.attempts + 1, updated_at = ?
      WHERE o.id IN (SELECT id FROM outbox
                      WHERE status = 'pending' AND run_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
                        AND ${condition}
                      ORDER BY run_at, id LIMIT ? FOR UPDATE SKIP LOCKED)
      RETURNING o.*`,
    [new Date(now.getTime() + leaseSeconds * 1000), now, now, now, ...bindings, limit],
  )) as { rows: OutboxRow[] };
  return rows;
}

/** Claims due rows of the work lane (every kind but deliveries). */
export const claimWork = (db: Db, clock: Clock, limit: number, leaseSeconds: number): Promise<OutboxRow[]> =>
  claimDue(db, clock, limit, leaseSeconds, WORK_LANE);

/**
 * A delivery's lease outlives its request: at least twice the HTTP timeout (the request, and as
 * long again for the reads and the attempt's record around it), so no other worker takes a
 * delivery over (and sends it again) while its request may still be answered.
 */
export const deliveryLeaseSeconds = (config: Pick<Config, 'leaseSeconds' | 'webhookTimeoutMs'>): number =>
  Math.max(config.leaseSeconds, Math.ceil((2 * config.webhookTimeoutMs) / 1000));

/**
 * Claims up to `limit` due deliveries, oldest first, taking from each endpoint only as many as
 * keep it within `perEndpoint` leased rows (rows of a worker that died count until their lease
 * ends). Endpoints are found by a skip scan of the index (one probe per endpoint with rows
 * queued), so an endpoint with thousands of rows waiting costs the others nothing.
 */
export async function claimDeliveries(db: Db, clock: Clock, o: { limit: number; perEndpoint: number; leaseSeconds: number }): Promise<OutboxRow[]> {
  if (o.limit <= 0 || o.perEndpoint <= 0) return [];
  const now = clock.now();
  const rows = await db.transaction(async (trx) => {
    await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [DELIVERY_CLAIM_LOCK]);
    const { rows } = (await trx.raw(
      `WITH RECURSIVE endpoints(k) AS (
           SELECT min(payload->>'endpoint_id') FROM outbox WHERE ${DELIVERY_LANE}
         UNION ALL
           SELECT (SELECT min(payload->>'endpoint_id') FROM outbox WHERE ${DELIVERY_LANE} AND payload->>'endpoint_id' > endpoints.k)
             FROM endpoints WHERE endpoints.k IS NOT NULL
       ),
       busy AS (
         SELECT payload->>'endpoint_id' AS k, count(*)::int AS n FROM outbox
          WHERE ${DELIVERY_LANE} AND lease_token IS NOT NULL AND locked_until > ?
          GROUP BY 1
       ),
       -- The oldest due rows of each endpoint, as many as its free slots (read, not locked: the
       -- advisory lock keeps other claims out, and only the rows picked are locked below).
       candidates AS (
         SELECT c.id, c.run_at FROM endpoints e LEFT JOIN busy b ON b.k = e.k
          CROSS JOIN LATERAL (
            SELECT id, run_at FROM outbox
             WHERE ${DELIVERY_LANE} AND payload->>'endpoint_id' = e.k
               AND run_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
             ORDER BY run_at, id
             LIMIT greatest(?::int - coalesce(b.n, 0), 0)
          ) c
          WHERE e.k IS NOT NULL
          ORDER BY c.run_at, c.id
          LIMIT ?
       ),
       picked AS (
         SELECT id FROM outbox
          WHERE id IN (SELECT id FROM candidates) AND ${DELIVERY_LANE} AND run_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
          FOR UPDATE SKIP LOCKED
       )
       UPDATE outbox o SET lease_token = gen_random_uuid(), locked_until = ?, attempts = o.attempts + 1, updated_at = ?
         FROM picked WHERE o.id = picked.id
       RETURNING o.*`,
      [now, now, now, o.perEndpoint, o.limit, now, now, new Date(now.getTime() + o.leaseSeconds * 1000), now],
    )) as { rows: OutboxRow[] };
    return rows;
  });
  return rows.sort((a, b) => a.run_at.getTime() - b.run_at.getTime() || Number(a.id) - Number(b.id));
}
