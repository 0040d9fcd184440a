import t from 'tap';
import { eachDb } from './helpers/db.js';
import { billAndPayment, payAt, client, makeApp, seedTenant, shortAdapterTimeout } from './helpers/app.js';
import { balances } from '../gateway/ledger/ledger.js';

eachDb('a sandbox payment goes created → pending → succeeded once, with journal and bill', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const { bill, payment } = await billAndPayment(env.app, ten.keys.integration);
  t.equal(bill.total_amount, 58_000, 'total is the sum of the items');
  t.equal(payment.status, 'pending');
  t.equal(payment.amount, 58_000);
  t.equal(payment.checkout.type, 'redirect');
  const url = new URL(payment.checkout.url);
  t.equal(url.origin + url.pathname, 'http://feegate.test/sandbox/pay', 'a redirect to the provider');
  t.equal(url.searchParams.get('reference'), payment.reference);
  t.equal(url.searchParams.get('amount'), '58000');
  t.equal(env.sim.orders.size, 0, 'nothing exists at the provider before the payer arrives');

  // The payer pays at the provider; the provider calls back.
  const done = await payAt(env.sim, payment, 'success');
  t.equal(done?.deliveries.length, 1);
  t.equal(JSON.parse(done!.deliveries[0]!.answer).code, '00', 'the callback was confirmed in the provider format');

  const after = await api.get(`/v1/payments/${payment.id}`);
  t.equal(after.body.status, 'succeeded');
  t.equal(after.body.provider_transaction_id, done!.txnId);
  const billAfter = await api.get(`/v1/bills/${bill.id}`);
  t.equal(billAfter.body.status, 'paid');
  t.equal(billAfter.body.amount_paid, 58_000);
  t.equal(billAfter.body.amount_due, 0);

  const bal = await balances(db, ten.tenantId);
  t.same(bal, [
    { account: 'fees_collected', debits: 0, credits: 58_000, balance: -58_000 },
    { account: 'provider_clearing:sandbox', debits: 58_000, credits: 0, balance: 58_000 },
  ]);

  // Paying a paid bill is refused and writes nothing.
  const again = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' });
  t.equal(again.status, 409);
  t.equal(again.body.error.code, 'FEEGATE_ERR_BILL_NOT_PAYABLE');
});

eachDb('one in-flight payment per bill; after a failure the bill can be paid again', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const { bill, payment } = await billAndPayment(env.app, ten.keys.integration);
  const second = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' });
  t.equal(second.status, 409);
  t.equal(second.body.error.code, 'FEEGATE_ERR_PAYMENT_IN_PROGRESS');
  t.equal(second.body.error.details.payment_id, payment.id);

  await payAt(env.sim, payment, 'fail');
  t.equal((await api.get(`/v1/payments/${payment.id}`)).body.status, 'failed');
  const third = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' });
  t.equal(third.status, 201);
  await payAt(env.sim, third.body, 'cancel');
  t.equal((await api.get(`/v1/payments/${third.body.id}`)).body.status, 'cancelled');
  t.same(await balances(db, ten.tenantId), [], 'no money moved');
});

eachDb('concurrent payment creation for one bill: exactly one wins', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', { ...(await import('./helpers/app.js')).billInput() })).body;
  const results = await Promise.all(Array.from({ length: 8 }, () => api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' })));
  t.equal(results.filter((r) => r.status === 201).length, 1, 'one payment created');
  t.equal(results.filter((r) => r.status === 409 && r.body.error.code === 'FEEGATE_ERR_PAYMENT_IN_PROGRESS').length, 7);
  const [{ n }] = (await db('payments').where({ bill_id: bill.id }).count({ n: '*' })) as [{ n: string }];
  t.equal(Number(n), 1);
});

eachDb('partial payments of a tuition bill that allows them', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (
    await api.post('/v1/bills', {
      external_ref: 'HP-2026-HK1-HS001',
      kind: 'tuition',
      student_code: 'HS001',
      school_year: '2026-2027',
      term: 'HK1',
      payer: { name: 'Phụ huynh Lê Văn C' },
      allow_partial: true,
      items: [{ fee_code: 'HP', name: 'Học phí học kỳ 1', amount: 1_500_000 }],
    })
  ).body;
  const over = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox', amount: 1_500_001 });
  t.equal(over.body.error.code, 'FEEGATE_ERR_PAYMENT_AMOUNT_INVALID');
  const p1 = (await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox', amount: 500_000 })).body;
  await payAt(env.sim, p1, 'success');
  let b = (await api.get(`/v1/bills/${bill.id}`)).body;
  t.equal(b.status, 'partially_paid');
  t.equal(b.amount_due, 1_000_000);
  const p2 = (await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' })).body;
  t.equal(p2.amount, 1_000_000, 'without an amount, the rest is due');
  await payAt(env.sim, p2, 'success');
  b = (await api.get(`/v1/bills/${bill.id}`)).body;
  t.equal(b.status, 'paid');

  // A bill that does not allow partial payments refuses one.
  const fixed = (
    await api.post('/v1/bills', { external_ref: 'fixed-1', kind: 'charge', payer: { name: 'A' }, items: [{ fee_code: 'X', name: 'X', amount: 1000 }] })
  ).body;
  const partial = await api.post('/v1/payments', { bill_id: fixed.id, provider: 'sandbox', amount: 500 });
  t.equal(partial.status, 400);
  t.equal(partial.body.error.code, 'FEEGATE_ERR_PAYMENT_AMOUNT_INVALID');
});

eachDb('an API checkout (provider creates the order): succeeds, fails, or unknown (never failed)', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const ok = (await billAndPayment(env.app, ten.keys.integration, {}, 'sandbox_api')).payment;
  t.equal(ok.status, 'pending');
  t.ok(ok.provider_transaction_id, 'the provider gave its transaction id');
  t.ok(env.sim.orders.get(ok.reference), 'the order exists at the provider');
  await payAt(env.sim, ok, 'success');
  t.equal((await client(env.app, ten.keys.finance).get(`/v1/payments/${ok.id}`)).body.status, 'succeeded');

  env.sim.queueScenario({ create: 'fail' });
  const failed = (await billAndPayment(env.app, ten.keys.integration, {}, 'sandbox_api')).payment;
  t.equal(failed.status, 'failed');
  t.match(failed.failure, { code: 'sandbox_02' });

  env.sim.queueScenario({ create: 'unknown' });
  const unknown = (await billAndPayment(env.app, ten.keys.integration, {}, 'sandbox_api')).payment;
  t.equal(unknown.status, 'unknown', 'a system error is unknown');

  // A timeout: the adapter gives up after its timeout; the order exists at the provider.
  env.sim.queueScenario({ create: 'timeout', delayMs: 400 });
  const restore = shortAdapterTimeout(env.app, 100);
  const timedOut = (await billAndPayment(env.app, ten.keys.integration, {}, 'sandbox_api')).payment;
  restore();
  t.equal(timedOut.status, 'unknown', 'a timeout is unknown, never failed');
  t.match(timedOut.failure.message, /no answer/);
  t.ok(env.sim.orders.get(timedOut.reference), 'the provider did create the order');
});

t.test('no floats in money code', async (t) => {
  const { execSync } = await import('node:child_process');
  const out = execSync("git grep -nE 'parseFloat\\(|toFixed\\(|\\.(decimal|float|double)\\(' -- 'gateway/*.ts' 'adapters/*.ts' || true", { encoding: 'utf8' });
  t.equal(out.trim(), '', 'money is integer VND everywhere');
});
