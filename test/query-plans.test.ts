/**
 * The plans of the hot and the list queries, on PostgreSQL with realistic statistics: a table of
 * settled history analysed while few payments were in flight, then many payments in flight that no
 * ANALYZE has seen yet (the state a busy gateway is in between autovacuum runs). Each query must be
 * answered by the index meant for it, never by a scan of the table, and the per-bill "payment in
 * flight?" check never by the janitor's index (which would read every payment in flight).
 * Performance itself is measured by `npm run bench` (case h), not here.
 */
import t from 'tap';
import type { Knex } from 'knex';
import { eachDb } from './helpers/db.js';
import type { Db } from '../gateway/db/knex.js';
import { systemClock } from '../gateway/clock.js';
import { createTenant } from '../gateway/tenants/tenants.js';
import { BILL_COLUMNS } from '../gateway/payments/payments.js';
import { EXPIRE_BILLS_SQL } from '../gateway/jobs/janitor.js';

const HISTORY = 40_000;
const IN_FLIGHT = 4_000;

async function explain(db: Db, sql: string, bindings: readonly Knex.RawBinding[] = []): Promise<string> {
  const { rows } = (await db.raw(`EXPLAIN ${sql}`, bindings)) as { rows: { 'QUERY PLAN': string }[] };
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

/** Settled history on one tenant, ANALYZEd; then payments in flight the statistics do not know. */
async function seed(db: Db): Promise<{ tenantId: string; inFlightBill: string; settledBill: string }> {
  const tenantId = (
    await db.transaction((trx) => createTenant(trx, systemClock, { code: 'plans', name: 'Trường Plans', kind: 'school', taxCode: '0101234567' }))
  ).id;
  const other = (await db.transaction((trx) => createTenant(trx, systemClock, { code: 'plans-2', name: 'Trường Khác', kind: 'school', taxCode: '0101234567' })))
    .id;
  await db.raw(
    `INSERT INTO bills (tenant_id, external_ref, kind, payer, total_amount, amount_paid, status, due_date, request_hash, created_at, updated_at, student_code, school_year, term)
     SELECT CASE WHEN g % 10 = 0 THEN ?::uuid ELSE ?::uuid END, 'old-' || g, 'tuition', '{"name":"P"}', 1500000, 1500000, 'paid', current_date - 30,
            'x', now() - (g || ' minutes')::interval, now(), 'HS' || (g % 5000), '2025-2026', 'HK1'
     FROM generate_series(1, ?) g`,
    [other, tenantId, HISTORY],
  );
  await db.raw(
    `INSERT INTO payments (tenant_id, bill_id, reference, provider, amount, status, amount_refunded, expires_at, created_at, updated_at, succeeded_at)
     SELECT b.tenant_id, b.id, 'FGH' || md5(b.id::text), CASE WHEN random() < 0.01 THEN 'momo' ELSE 'sandbox' END, 1500000,
            CASE WHEN random() < 0.002 THEN 'refunded' ELSE 'succeeded' END, 0, b.created_at + interval '15 minutes', b.created_at, b.created_at, b.created_at
     FROM bills b`,
  );
  await db.raw(`INSERT INTO events (id, tenant_id, type, object_id, data, created_at)
     SELECT gen_random_uuid(), p.tenant_id, CASE WHEN random() < 0.002 THEN 'payment.refunded' ELSE 'payment.succeeded' END, p.id::text, '{}', p.created_at FROM payments p`);
  await db.raw('ANALYZE');
  // Now, unseen by the statistics: many bills with a payment in flight, each due for a check later.
  await db.raw(
    `WITH nb AS (
       INSERT INTO bills (tenant_id, external_ref, kind, payer, total_amount, request_hash, created_at, updated_at, student_code, school_year, term)
       SELECT ?, 'new-' || g, 'tuition', '{"name":"P"}', 1500000, 'x', now(), now(), 'HN' || g, '2026-2027', 'HK1' FROM generate_series(1, ?) g RETURNING id, tenant_id)
     INSERT INTO payments (tenant_id, bill_id, reference, provider, amount, status, expires_at, next_check_at, created_at, updated_at)
     SELECT tenant_id, id, 'FGN' || md5(id::text), 'sandbox', 1500000, 'pending', now() + interval '15 minutes', now() + interval '1 minute', now(), now() FROM nb`,
    [tenantId, IN_FLIGHT],
  );
  const inFlightBill = ((await db.raw(`SELECT bill_id FROM payments WHERE status = 'pending' LIMIT 1`)).rows as { bill_id: string }[])[0]!.bill_id;
  const settledBill = ((await db.raw(`SELECT bill_id FROM payments WHERE status = 'succeeded' LIMIT 1`)).rows as { bill_id: string }[])[0]!.bill_id;
  return { tenantId, inFlightBill, settledBill };
}

eachDb(
  'query plans hold with a year of data and stale statistics',
  async (t, { db }) => {
    const { tenantId, inFlightBill, settledBill } = await seed(db);

    // The bill read of payment creation, locked (one bill) and batched (many bills at once).
    const locked = await explain(db, `SELECT ${BILL_COLUMNS} FROM bills b WHERE b.id = ? AND b.tenant_id = ? FOR UPDATE OF b`, [inFlightBill, tenantId]);
    const batched = await explain(db, `SELECT ${BILL_COLUMNS} FROM bills b WHERE b.id = ANY(?::uuid[])`, [`{${inFlightBill},${settledBill}}`]);
    for (const [name, plan] of [
      ['locked bill read', locked],
      ['batched bill read', batched],
    ] as const) {
      t.match(
        plan,
        /Index (Only )?Scan using payments_(one_in_flight_per_bill|bill) on payments/,
        `${name}: the in-flight check reads this bill's payments\n${plan}`,
      );
      t.notMatch(plan, /payments_janitor|payments_due|Seq Scan on payments/, `${name}: never every payment in flight, never the table`);
    }

    // The janitor's claim of due payments still has its index (the same query as runJanitor).
    const claim = await explain(
      db,
      `SELECT id FROM payments WHERE status IN ('created', 'pending', 'unknown') AND next_check_at <= ?
    ORDER BY next_check_at LIMIT 50 FOR UPDATE SKIP LOCKED`,
      [new Date()],
    );
    t.match(claim, /Index Scan using payments_due on payments/, `the janitor claims due payments through payments_due\n${claim}`);

    // The bill-expiry sweep reads only open bills past due, not every bill.
    const sweep = await explain(db, EXPIRE_BILLS_SQL, [new Date(), '2026-12-01']);
    t.match(sweep, /Index Scan using bills_open_due on bills/, `the sweep reads only what is due\n${sweep}`);
    t.notMatch(sweep, /Seq Scan on (bills|payments)/, 'no sequential scan in the sweep');

    // Every list filter the API offers, in the list's own order (as paginate runs it).
    const page = (table: string, filter: Record<string, string>) =>
      db(table)
        .where({ tenant_id: tenantId })
        .andWhere(filter)
        .orderBy([
          { column: `${table}.created_at`, order: 'desc' },
          { column: `${table}.id`, order: 'desc' },
        ])
        .limit(21)
        .toString();
    const lists: [string, string, RegExp][] = [
      ['payments?status=refunded', page('payments', { status: 'refunded' }), /payments_tenant_status_list/],
      // An in-flight status may also be read through a partial index of in-flight payments: its cost is
      // bounded by the checkouts open right now, not by the year of settled payments.
      ['payments?status=pending', page('payments', { status: 'pending' }), /payments_tenant_status_list|payments_one_in_flight_per_bill|payments_due/],
      ['payments?provider=momo', page('payments', { provider: 'momo' }), /payments_tenant_provider_list/],
      ['payments?bill_id=', page('payments', { bill_id: settledBill }), /payments_bill|payments_one_in_flight_per_bill/],
      ['bills?status=open', page('bills', { status: 'open' }), /bills_tenant_status_list/],
      ['bills?status=expired', page('bills', { status: 'expired' }), /bills_tenant_status_list/],
      ['bills?student_code=', page('bills', { student_code: 'HS42' }), /bills_tenant_student_list/],
      ['bills?external_ref=', page('bills', { external_ref: 'old-42' }), /bills_tenant_external_ref/],
      ['events?type=payment.refunded', page('events', { type: 'payment.refunded' }), /events_tenant_type_list/],
      ['events?object_id=', page('events', { object_id: settledBill }), /events_object/],
    ];
    for (const [name, sql, index] of lists) {
      const plan = await explain(db, sql);
      t.match(plan, index, `${name}: served by its index\n${plan}`);
      t.notMatch(plan, /Seq Scan/, `${name}: no sequential scan`);
    }
  },
  { engines: ['postgres'] },
);

void t;
