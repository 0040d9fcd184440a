/**
 * The set-based transition: many payments move in one statement, each exactly as it would alone
 * (state, journal, bill, audit, events, receipt queued), illegal and no-op moves write nothing,
 * and the statement count does not grow with the moves.
 */
import { eachDb } from './helpers/db.js';
import { billAndPayment, makeApp, seedTenant } from './helpers/app.js';
import { transitionPayments, type Move } from '../gateway/payments/transition.js';
import type { PaymentRow } from '../gateway/payments/model.js';
import type { Db } from '../gateway/db/knex.js';

const count = async (db: Db, table: string, where: Record<string, unknown>) =>
  Number(((await db(table).where(where).count('* as n').first()) as { n: string | number }).n);

eachDb('transitions: many payments move in one statement, each as it would alone', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const made: Awaited<ReturnType<typeof billAndPayment>>[] = [];
  for (let i = 0; i < 4; i++) made.push(await billAndPayment(env.app, ten.keys.integration));
  const [a, b, c, d] = made.map((m) => m.payment.id as string) as [string, string, string, string];
  await db('payments').where({ id: c }).update({ status: 'failed' });
  await db('payments').where({ id: d }).update({ status: 'created' });
  env.clock.advance(1000);

  let statements = 0;
  const onQuery = () => {
    statements++;
  };
  const results = await db.transaction(async (trx) => {
    const rows = (await trx('payments').whereIn('id', [a, b, c, d]).forUpdate()) as PaymentRow[];
    const row = (id: string) => rows.find((r) => r.id === id)!;
    const moves: Move[] = [
      { payment: row(a), change: { to: 'succeeded', source: 'callback', actor: 'provider:sandbox', providerTxnId: 'TX-A' } },
      { payment: row(b), change: { to: 'failed', source: 'callback', actor: 'provider:sandbox', failure: { code: '24', message: 'cancelled by payer' } } },
      { payment: row(c), change: { to: 'failed', source: 'query', actor: 'janitor' } },
      { payment: row(d), change: { to: 'refunded', source: 'callback', actor: 'provider:sandbox' } },
    ];
    trx.on('query', onQuery);
    try {
      return await transitionPayments(trx, env.clock, moves);
    } finally {
      trx.removeListener('query', onQuery);
    }
  });
  t.equal(statements, 1, 'one statement for all four');
  t.same(
    results.map((r) => [r.from, r.payment.status, r.changed]),
    [
      ['pending', 'succeeded', true],
      ['pending', 'failed', true],
      ['failed', 'failed', false],
      ['created', 'created', false],
    ],
  );
  t.match(results[3]!.refused, /not a legal transition/, 'the illegal move says why');

  const got = async (id: string) => (await db('payments').where({ id }).first()) as PaymentRow;
  t.match(await got(a), { status: 'succeeded', provider_txn_id: 'TX-A', failure_code: null, next_check_at: null });
  t.ok((await got(a)).succeeded_at, 'succeeded_at set');
  t.match(await got(b), { status: 'failed', failure_code: '24', failure_message: 'cancelled by payer' });
  for (const id of [c, d])
    t.equal(await count(db, 'audit_log', { entity_id: id, entity_type: 'payment', actor: 'janitor' }), 0, 'no-op and illegal moves write nothing');
  t.equal(await count(db, 'audit_log', { entity_id: d, action: 'payment.refunded' }), 0);

  const billOf = (i: number) => db('bills').where({ id: made[i]!.bill.id }).first();
  t.match(await billOf(0), { status: 'paid' });
  t.equal(Number((await billOf(0)).amount_paid), 58_000, 'the bill of the succeeded payment is paid');
  t.equal(Number((await billOf(1)).amount_paid), 0, 'the failed payment pays nothing');
  t.equal(await count(db, 'ledger_transfers', { payment_id: a }), 1, 'one journal transfer for the money');
  t.equal(await count(db, 'ledger_transfers', { payment_id: b }), 0);
  t.equal(await count(db, 'events', { object_id: a, type: 'payment.succeeded' }), 1);
  t.equal(await count(db, 'events', { object_id: b, type: 'payment.failed' }), 1);
  t.equal(await count(db, 'events', { object_id: made[0]!.bill.id, type: 'bill.paid' }), 1, 'bill.paid for the bill the payment completed');
  t.equal(await count(db, 'events', { object_id: made[1]!.bill.id, type: 'bill.paid' }), 0);
  t.equal(await count(db, 'outbox', { kind: 'receipt.issue' }), 1, 'a receipt queued for the succeeded payment only');
  const ev = (await db('events').where({ object_id: a, type: 'payment.succeeded' }).first()) as { data: { status: string; provider_transaction_id: string } };
  t.match(ev.data, { status: 'succeeded', provider_transaction_id: 'TX-A' }, 'the event shows the payment as it now is');
  t.equal(await count(db, 'outbox', { kind: 'event.fanout' }), 3, 'each event fans out');
});

eachDb('transitions: a late success overpays the bill, says so, and does not pay it twice', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const { bill, payment: first } = await billAndPayment(env.app, ten.keys.integration);
  await db('payments').where({ id: first.id }).update({ status: 'expired' });
  const second = (
    await env.app.inject({
      method: 'POST',
      url: '/v1/payments',
      headers: { authorization: `Bearer ${ten.keys.integration}` },
      payload: { bill_id: bill.id, provider: 'sandbox' },
    })
  ).json() as { id: string };
  const move = (ids: string[]) =>
    db.transaction(async (trx) => {
      const rows = (await trx('payments').whereIn('id', ids).orderBy('id').forUpdate()) as PaymentRow[];
      return transitionPayments(
        trx,
        env.clock,
        rows.map((p) => ({ payment: p, change: { to: 'succeeded', source: 'callback', actor: 'provider:sandbox' } })),
      );
    });
  await t.rejects(move([first.id, second.id]), /a bill receive money once/, 'two payments of one bill do not get money in one statement');
  t.equal(await count(db, 'payments', { bill_id: bill.id, status: 'succeeded' }), 0, 'and nothing moved');

  await move([second.id]);
  const [late] = await move([first.id]);
  t.equal(late!.payment.status, 'succeeded', 'the late success is accepted: the money is real');
  const b = (await db('bills').where({ id: bill.id }).first()) as { amount_paid: string; status: string };
  t.equal(Number(b.amount_paid), 116_000);
  t.equal(b.status, 'paid');
  const audit = (await db('audit_log').where({ entity_id: first.id, action: 'payment.succeeded' }).first()) as { data: Record<string, unknown> };
  t.match(audit.data, { late_success: true, overpaid_by: 58_000 }, 'the audit record says by how much the bill is overpaid');
  const onTime = (await db('audit_log').where({ entity_id: second.id, action: 'payment.succeeded' }).first()) as { data: Record<string, unknown> };
  t.notOk('overpaid_by' in onTime.data, 'the payment that completed the bill did not overpay it');
  t.equal(await count(db, 'events', { object_id: bill.id, type: 'bill.paid' }), 1, 'bill.paid once');
  t.equal(await count(db, 'outbox', { kind: 'receipt.issue' }), 2, 'a receipt for each payment');
});
