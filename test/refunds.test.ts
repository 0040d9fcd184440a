import { eachDb } from './helpers/db.js';
import { billAndPayment, payAt, client, losingRefundAnswers, makeApp, seedTenant, shortAdapterTimeout } from './helpers/app.js';
import { balances } from '../gateway/ledger/ledger.js';
import { REFUND_NOT_FOUND_GRACE_MS, runRefundChecks } from '../gateway/jobs/refund-checks.js';
import { REFUND_FIRST_CHECK_SECONDS } from '../gateway/payments/refunds.js';
import type { Test } from 'tap';
import type { Db } from '../gateway/db/knex.js';

/** A gateway, a tenant, and one payment of 58,000 VND that succeeded. */
async function paidPayment(t: Test, db: Db) {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const { payment } = await billAndPayment(env.app, ten.keys.integration);
  await payAt(env.sim, payment, 'success');
  return { env, ten, payment, fin: client(env.app, ten.keys.finance) };
}

eachDb('refunds: partial then full, journal follows, never above collected', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const { payment } = await billAndPayment(env.app, ten.keys.integration);
  const fin = client(env.app, ten.keys.finance);
  const early = await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 1000 });
  t.equal(early.body.error.code, 'FEEGATE_ERR_PAYMENT_NOT_REFUNDABLE', 'a pending payment cannot be refunded');
  await payAt(env.sim, payment, 'success');

  const r1 = await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 8_000, reason: 'Thu thừa phí sao y' });
  t.equal(r1.status, 201);
  t.equal(r1.body.status, 'succeeded');
  let p = (await fin.get(`/v1/payments/${payment.id}`)).body;
  t.equal(p.status, 'partially_refunded');
  t.equal(p.amount_refunded, 8_000);

  const over = await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 50_001 });
  t.equal(over.status, 400);
  t.equal(over.body.error.code, 'FEEGATE_ERR_REFUND_EXCEEDS_REFUNDABLE');
  t.equal(over.body.error.details.refundable, 50_000);

  const r2 = await fin.post(`/v1/payments/${payment.id}/refunds`, {});
  t.equal(r2.body.amount, 50_000, 'without amount: the rest');
  p = (await fin.get(`/v1/payments/${payment.id}`)).body;
  t.equal(p.status, 'refunded');
  t.equal(p.amount_refunded, 58_000);
  const none = await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 1 });
  t.equal(none.body.error.code, 'FEEGATE_ERR_PAYMENT_NOT_REFUNDABLE');

  const list = (await fin.get(`/v1/payments/${payment.id}/refunds`)).body;
  t.same(
    list.data.map((r: { amount: number }) => r.amount),
    [8_000, 50_000],
  );
  const bal = await balances(db, ten.tenantId);
  t.same(
    bal.map((b) => [b.account, b.balance]),
    [
      ['fees_collected', 0],
      ['provider_clearing:sandbox', 0],
    ],
    'collected and refunded net to zero',
  );
});

eachDb('refunds: concurrent requests never exceed what was collected', async (t, { db }) => {
  const { payment, fin } = await paidPayment(t, db);
  const results = await Promise.all(Array.from({ length: 10 }, () => fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 10_000 })));
  const ok = results.filter((r) => r.status === 201);
  t.equal(ok.length, 5, 'five refunds of 10,000 fit in 58,000');
  t.ok(results.filter((r) => r.status !== 201).every((r) => r.body.error.code === 'FEEGATE_ERR_REFUND_EXCEEDS_REFUNDABLE'));
  const [{ s }] = (await db('refunds').where({ payment_id: payment.id }).sum({ s: 'amount' })) as [{ s: string }];
  t.equal(Number(s), 50_000);
});

eachDb('refunds: refused by the provider, or no answer (unknown, reserved, never double)', async (t, { db }) => {
  const { env, ten, payment, fin } = await paidPayment(t, db);
  const order = env.sim.orders.get(payment.reference)!;

  order.scenario.refund = 'fail';
  const failed = await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 20_000 });
  t.equal(failed.body.status, 'failed');
  t.equal((await fin.get(`/v1/payments/${payment.id}`)).body.status, 'succeeded', 'a failed refund changes nothing');

  order.scenario.refund = 'timeout';
  order.scenario.delayMs = 300;
  const restore = shortAdapterTimeout(env.app, 100);
  const unknown = await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 20_000 });
  restore();
  t.equal(unknown.body.status, 'unknown', 'a refund with no answer is unknown');
  const more = await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 38_001 });
  t.equal(more.body.error.code, 'FEEGATE_ERR_REFUND_EXCEEDS_REFUNDABLE', 'the unknown refund still holds its amount');
  const bal = await balances(db, ten.tenantId);
  t.equal(bal.find((b) => b.account === 'fees_collected')!.balance, -58_000, "nothing booked for refunds without the provider's yes");
});

eachDb('refunds: the janitor settles a refund whose answer was lost, and fails one that never reached the provider', async (t, { db }) => {
  const { env, ten, payment, fin } = await paidPayment(t, db);
  const { deps } = env.app;
  const order = env.sim.orders.get(payment.reference)!;
  const refundsOf = async () =>
    (await fin.get(`/v1/payments/${payment.id}/refunds`)).body.data as { id: string; status: string; failure_message: string | null }[];

  // A: the provider makes the refund, but its answer comes after we gave up.
  order.scenario.refund = 'timeout';
  order.scenario.delayMs = 200;
  const restore = shortAdapterTimeout(env.app, 50);
  const a = (await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 20_000 })).body;
  restore();
  t.equal(a.status, 'unknown');
  for (let i = 0; i < 100 && order.refunds.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(order.refunds.length, 1, 'the provider did make refund A');

  // B: this process died while asking (the row is still pending) and the request never arrived.
  order.scenario.refund = 'normal';
  const b = await losingRefundAnswers(
    deps.providers.get('sandbox')!,
    false,
    async () => (await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 10_000 })).body,
  );
  await db('refunds')
    .where({ id: b.id })
    .update({ status: 'pending', next_check_at: new Date(env.clock.now().getTime() + REFUND_FIRST_CHECK_SECONDS * 1000) });

  t.equal(await runRefundChecks(deps), 0, 'nothing is asked before its check is due');
  env.clock.advance(REFUND_FIRST_CHECK_SECONDS * 1000 + 1000);
  t.equal(await runRefundChecks(deps), 2, 'both are asked about');
  let now = Object.fromEntries((await refundsOf()).map((r) => [r.id, r]));
  t.equal(now[a.id]!.status, 'succeeded', 'A: the provider says it was made');
  t.equal(now[b.id]!.status, 'pending', 'B: the provider has no record yet, but it is too early to call it never made');
  const p = (await fin.get(`/v1/payments/${payment.id}`)).body;
  t.match(p, { status: 'partially_refunded', amount_refunded: 20_000 });
  t.equal(
    (await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 28_001 })).body.error.code,
    'FEEGATE_ERR_REFUND_EXCEEDS_REFUNDABLE',
    'B still holds its amount',
  );

  t.equal(await runRefundChecks(deps), 0, 'B is asked again only on the schedule');
  env.clock.advance(REFUND_NOT_FOUND_GRACE_MS);
  t.equal(await runRefundChecks(deps), 1);
  now = Object.fromEntries((await refundsOf()).map((r) => [r.id, r]));
  t.equal(now[b.id]!.status, 'failed', 'B: still unknown to the provider after the grace period, so never made');
  t.match(now[b.id]!.failure_message, /never made/);
  t.equal((await fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 38_000 })).body.status, 'succeeded', "B's amount is refundable again");

  const bal = await balances(db, ten.tenantId);
  t.equal(bal.find((x) => x.account === 'fees_collected')!.balance, 0, 'the journal holds A and the last refund, nothing for B');
  const events = (await db('events').whereIn('object_id', [a.id, b.id]))
    .map((e: { object_id: string; type: string }) => `${e.object_id === a.id ? 'A' : 'B'} ${e.type}`)
    .sort();
  t.same(events, ['A refund.succeeded', 'B refund.failed'], 'each outcome told once');
  t.equal((await db('outbox').where({ kind: 'receipt.adjust' })).length, 2, 'receipt adjustments for A and the last refund only');
  t.equal(await runRefundChecks(deps), 0, 'nothing left to ask');
});
