/**
 * PayGov end to end through the gateway and the hub simulator, on both databases; the checksum
 * rule and the answers as protocol.ts assumes them.
 */
import t from 'tap';
import { eachDb, snapshot } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant } from './helpers/app.js';
import { runJanitor } from '../gateway/jobs/janitor.js';
import { parsePgTime, pgChecksum, pgOutcome, pgSign, pgTime, pgVerify } from '../adapters/paygov/protocol.js';
import { paygovAdapter } from '../adapters/paygov/adapter.js';

t.test('paygov protocol: checksum over sorted fields, constant-time verify, time format, outcomes', async (t) => {
  const f = { orderId: 'FG1', amount: 58000, partnerCode: 'P', feeItems: [{ code: 'LP01', name: 'Lệ phí', amount: 58000 }], empty: '' };
  // The canonical string is the assumption A4, written out by hand here.
  const expected = (await import('node:crypto'))
    .createHmac('sha256', 'k')
    .update('amount=58000&feeItems=[{"code":"LP01","name":"Lệ phí","amount":58000}]&orderId=FG1&partnerCode=P')
    .digest('hex');
  t.equal(pgChecksum('k', f), expected, 'keys sorted, arrays as JSON, empty values skipped');
  const signed = pgSign('k', f);
  t.ok(pgVerify('k', signed));
  t.notOk(pgVerify('k', { ...signed, amount: 58001 }), 'tampered amount');
  t.notOk(pgVerify('other', signed), 'another secret');
  t.notOk(pgVerify('k', { ...signed, checksum: 'zz' }), 'malformed checksum');
  t.equal(pgTime(new Date('2026-03-10T17:30:05Z')), '20260311003005', 'GMT+7');
  t.equal(parsePgTime('20260311003005')?.toISOString(), '2026-03-10T17:30:05.000Z');
  t.same(
    ['SUCCESS', 'FAILED', 'CANCELLED', 'PENDING', 'REVERSED', undefined].map(pgOutcome),
    ['succeeded', 'failed', 'cancelled', 'pending', 'unknown', 'unknown'],
    'unknown statuses are unknown, never failed',
  );
  const lines = paygovAdapter.parseSettlement('orderId,transactionId,amount,fee,paidAt,status\nFG1,PG1,58000,1100,20260311003005,SUCCESS\n');
  t.match(lines[0], { ourRef: 'FG1', providerRef: 'PG1', amount: 58000, fee: 1100, status: 'succeeded' });
  t.throws(() => paygovAdapter.parseSettlement('orderId,transactionId,amount,fee,paidAt,status\nFG1,PG1,58.5,0,20260311003005,SUCCESS\n'), /line 2/);
});

eachDb('paygov: dossier and fees sent to the hub, signed notification, bad ones refused, lost one recovered, refund', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const fin = client(env.app, ten.keys.finance);
  const sim = env.app.simulators!.paygov;

  const bill = (await api.post('/v1/bills', billInput())).body;
  const p = (await api.post('/v1/payments', { bill_id: bill.id, provider: 'paygov' })).body;
  t.equal(p.status, 'pending');
  t.match(p.checkout, { type: 'redirect', url: /\/sandbox\/paygov\/pay\// });
  const order = sim.orders.get(p.reference)!;
  t.equal(order.dossierCode, bill.dossier_code, 'the hub knows the dossier');
  t.same(
    order.feeItems.map((i) => [i.code, i.amount]),
    [
      ['LP01', 50_000],
      ['LP02', 8_000],
    ],
    'and each fee',
  );
  const page = await env.app.inject(new URL(p.checkout.url).pathname);
  t.match(page.body, /Lệ phí đăng ký khai sinh/, 'the hub page lists the fees');

  await sim.complete(p.reference, 'success');
  t.same(order.notifyAnswers, ['00'], 'notification confirmed with code 00');
  t.equal((await fin.get(`/v1/payments/${p.id}`)).body.status, 'succeeded');

  const notify = (body: Record<string, unknown>) =>
    env.app.inject({ method: 'POST', url: '/v1/notify/paygov', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
  const secret = sim.opts.partner.secret;
  const good = sim.result(order);
  const before = await snapshot(db);
  t.equal((await notify(good)).json().code, '02', 'a duplicate: already confirmed');
  t.equal((await notify({ ...good, amount: 1 })).json().code, '97', 'tampered: invalid checksum');
  const { checksum: _c, ...unsigned } = good;
  t.equal((await notify(pgSign(secret, { ...unsigned, orderId: 'FGNOPE' }))).json().code, '01', 'unknown order');
  t.equal((await notify(pgSign(secret, { ...unsigned, transactionId: 'PGX', amount: 59_000 }))).json().code, '04', 'wrong amount');
  t.equal(
    (await env.app.inject({ method: 'POST', url: '/v1/notify/paygov', headers: { 'content-type': 'application/json' }, payload: '{"orderId":' })).json().code,
    '99',
    'malformed',
  );
  t.same(await snapshot(db), before, 'nothing was written');

  const refund = await fin.post(`/v1/payments/${p.id}/refunds`, { amount: 8_000, reason: 'Thu thừa' });
  t.equal(refund.body.status, 'succeeded', 'partial refund at the hub');
  t.equal(order.refunded, 8_000);

  // A lost notification: the janitor's query finds the payment.
  const bill2 = (await api.post('/v1/bills', billInput())).body;
  const p2 = (await api.post('/v1/payments', { bill_id: bill2.id, provider: 'paygov' })).body;
  sim.orders.get(p2.reference)!.knobs.delivery = 'lost';
  await sim.complete(p2.reference, 'success');
  t.equal((await fin.get(`/v1/payments/${p2.id}`)).body.status, 'pending');
  env.clock.advance(60_000);
  await runJanitor(env.app.deps);
  t.equal((await fin.get(`/v1/payments/${p2.id}`)).body.status, 'succeeded', 'recovered by query');

  // The hub refuses what it would refuse: an order already past its deadline.
  const bill3 = (await api.post('/v1/bills', billInput())).body;
  const realNow = env.clock.now();
  const orig = sim.opts.clock;
  (sim.opts as { clock: typeof orig }).clock = { now: () => new Date(realNow.getTime() + 86400_000) };
  const late = (await api.post('/v1/payments', { bill_id: bill3.id, provider: 'paygov' })).body;
  (sim.opts as { clock: typeof orig }).clock = orig;
  t.equal(late.status, 'failed');
  t.match(late.failure, { code: 'paygov_07' }, "expired order refused with the hub's code");
});
