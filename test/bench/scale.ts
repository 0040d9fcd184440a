/**
 * Case (h) of npm run bench: a year of data. Seeds BENCH_YEAR_ROWS (default 1,000,000) settled
 * payments, each on its own bill, spread over the last year on the bench school (the worst case for
 * its lists), with the mix of a real year (a few refunded, failed, expired, cancelled), in two
 * set-based statements. Then ANALYZE, as autovacuum would after such a load, and fresh bills and
 * payments in flight for the measured requests that no ANALYZE has seen.
 */
import type { Db } from '../../gateway/db/knex.js';
import { vnDate } from '../../gateway/clock.js';
import { EXPIRE_BILLS_SQL } from '../../gateway/jobs/janitor.js';

export async function seedYear(db: Db, tenantId: string, n: number): Promise<number> {
  const t0 = performance.now();
  await db.raw(
    `WITH b AS (
       INSERT INTO bills (tenant_id, external_ref, kind, payer, total_amount, amount_paid, status, due_date, request_hash,
                          created_at, updated_at, student_code, school_year, term)
       SELECT ?, 'year-' || g, 'tuition', '{"name":"Phụ huynh"}', 1500000,
              CASE WHEN g % 200 = 0 OR g % 100 = 1 THEN 0 ELSE 1500000 END,
              CASE WHEN g % 200 = 0 THEN 'cancelled' WHEN g % 100 = 1 THEN 'expired' ELSE 'paid' END,
              (now() - g * (interval '1 year' / ?))::date + 30, 'x',
              now() - g * (interval '1 year' / ?), now() - g * (interval '1 year' / ?), 'HY' || (g % 50000), '2025-2026', 'HK1'
       FROM generate_series(1, ?) g
       RETURNING id, tenant_id, status, created_at, external_ref)
     INSERT INTO payments (tenant_id, bill_id, reference, provider, amount, status, amount_refunded, expires_at, created_at, updated_at, succeeded_at)
     SELECT tenant_id, id, 'FGY' || upper(substr(md5(id::text), 1, 20)),
            CASE WHEN right(external_ref, 2) = '07' THEN 'momo' WHEN right(external_ref, 2) = '13' THEN 'vnpay' ELSE 'sandbox' END, 1500000,
            CASE WHEN status = 'cancelled' THEN 'failed' WHEN status = 'expired' THEN 'expired'
                 WHEN right(external_ref, 3) = '333' THEN 'refunded' ELSE 'succeeded' END,
            CASE WHEN status = 'paid' AND right(external_ref, 3) = '333' THEN 1500000 ELSE 0 END,
            created_at + interval '15 minutes', created_at, created_at, CASE WHEN status = 'paid' THEN created_at END
     FROM b`,
    [tenantId, n, n, n, n],
  );
  await db.raw('ANALYZE');
  return (performance.now() - t0) / 1000;
}

/** One pass of the janitor's bill-expiry sweep, executed and rolled back: its execution time in ms. */
export async function sweepMs(db: Db): Promise<number> {
  let ms = NaN;
  await db
    .transaction(async (trx) => {
      const { rows } = (await trx.raw(`EXPLAIN (ANALYZE, FORMAT JSON) ${EXPIRE_BILLS_SQL}`, [new Date(), vnDate(new Date())])) as {
        rows: { 'QUERY PLAN': [{ 'Execution Time': number }] }[];
      };
      ms = rows[0]!['QUERY PLAN'][0]['Execution Time'];
      await trx.rollback();
    })
    .catch(() => undefined);
  return ms;
}
