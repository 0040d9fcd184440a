/** VNPay end to end through the gateway and the VNPay simulator, on both databases. */
import { eachDb, snapshot } from './helpers/db.js';
import { billInput, client, losingRefundAnswers, makeApp, seedTenant } from './helpers/app.js';
import type { FaultKnobs } from '../adapters/simulator-kit.js';
import { runJanitor } from '../gateway/jobs/janitor.js';
import { REFUND_NOT_FOUND_GRACE_MS, runRefundChecks } from '../gateway/jobs/refund-checks.js';
import { REFUND_FIRST_CHECK_SECONDS } from '../gateway/payments/refunds.js';
import { secureHash, signData, verifySecureHash } from '../adapters/vnpay/protocol.js';

async function vnpayPayment(env: Awaited<ReturnType<typeof makeApp>>, key: string) {
  const api = client(env.app, key);
  const bill = (await api.post('/v1/bills', billInput())).body;
  const pay = await api.post('/v1/payments', { bill_id: bill.id, provider: 'vnpay' });
  if (pay.status !== 201) throw new Error(JSON.stringify(pay.body));
  return { bill, payment: pay.body };
}

/** A VNPay payment whose payer opened the checkout and chose `result` at VNPay (with the simulator's fault knobs). */
async function payAtVnpay(env: Awaited<ReturnType<typeof makeApp>>, key: string, result: 'success' | 'cancel', knobs: FaultKnobs = {}) {
  const { payment } = await vnpayPayment(env, key);
  const sim = env.app.simulators!.vnpay;
  sim.open(Object.fromEntries(new URL(payment.checkout.url).searchParams));
  Object.assign(sim.orders.get(payment.reference)!.knobs, knobs);
  await sim.complete(payment.reference, result);
  return payment;
}

eachDb('vnpay: signed redirect, payment page, IPN by GET, answers in VNPay format', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.finance);
  const { payment } = await vnpayPayment(env, ten.keys.integration);
  const url = new URL(payment.checkout.url);
  t.equal(url.pathname, '/sandbox/vnpay/paymentv2/vpcpay.html');
  const q = Object.fromEntries(url.searchParams);
  t.equal(q.vnp_Amount, '5800000', 'amount x 100');
  t.equal(q.vnp_TxnRef, payment.reference);
  t.match(q.vnp_OrderInfo, /^Le phi dang ky ho tich$/, 'order info without diacritics');
  t.equal(q.vnp_CreateDate, '20260310090000', 'GMT+7');
  t.ok(verifySecureHash(q, `${env.app.deps.config.sandboxSecret}:vnpay`), 'the URL is signed');

  const page = await env.app.inject(url.pathname + url.search);
  t.equal(page.statusCode, 200);
  const tampered = await env.app.inject(url.pathname + url.search.replace('vnp_Amount=5800000', 'vnp_Amount=100000'));
  t.match(tampered.body, /Mã lỗi 97/, 'the simulator refuses a tampered checkout like VNPay');

  const back = await env.app.inject({
    method: 'POST',
    url: `/sandbox/vnpay/paymentv2/pay/${payment.reference}`,
    payload: 'result=success',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.equal(back.statusCode, 303);
  const order = env.app.simulators!.vnpay.orders.get(payment.reference)!;
  t.same(
    order.ipnAnswers.map((a) => JSON.parse(a)),
    [{ RspCode: '00', Message: 'Confirm Success' }],
  );
  const p = (await api.get(`/v1/payments/${payment.id}`)).body;
  t.equal(p.status, 'succeeded');
  t.equal(p.provider_transaction_id, order.transactionNo);
  // The browser return, verified, shows the status.
  const ret = await env.app.inject(String(back.headers.location).replace('http://feegate.test', ''));
  t.match(ret.body, /Thanh toán thành công/);

  // A duplicate IPN: 02. A tampered one: 97. Unknown order: 01. Wrong amount: 04. Nothing changes.
  const secret = `${env.app.deps.config.sandboxSecret}:vnpay`;
  const ipn = (params: Record<string, string>) => env.app.inject(`/v1/notify/vnpay?${signData(params)}&vnp_SecureHash=${secureHash(params, secret)}`);
  const good = Object.fromEntries(new URLSearchParams(env.app.simulators!.vnpay.resultQuery(order)));
  delete good.vnp_SecureHash;
  const before = await snapshot(db);
  t.equal((await ipn(good)).json().RspCode, '02', 'duplicate');
  t.equal(
    (await env.app.inject(`/v1/notify/vnpay?${signData({ ...good, vnp_Amount: '100' })}&vnp_SecureHash=${secureHash(good, secret)}`)).json().RspCode,
    '97',
    'tampered',
  );
  t.equal((await ipn({ ...good, vnp_TxnRef: 'FGNOPE' })).json().RspCode, '01', 'unknown order');
  t.equal((await ipn({ ...good, vnp_Amount: '5900000', vnp_TransactionNo: '999' })).json().RspCode, '04', 'wrong amount');
  t.equal((await env.app.inject('/v1/notify/vnpay?vnp_TxnRef=x')).json().RspCode, '97', 'unsigned');
  t.same(await snapshot(db), before, 'nothing was written');
});

eachDb('vnpay: cancel, lost IPN recovered by querydr, refunds', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.finance);
  const sim = env.app.simulators!.vnpay;

  const a = await payAtVnpay(env, ten.keys.integration, 'cancel');
  t.equal((await api.get(`/v1/payments/${a.id}`)).body.status, 'cancelled', 'code 24 is a cancellation');

  const b = await payAtVnpay(env, ten.keys.integration, 'success', { delivery: 'lost' });
  t.equal((await api.get(`/v1/payments/${b.id}`)).body.status, 'pending', 'the IPN was lost');
  env.clock.advance(60_000);
  await runJanitor(env.app.deps);
  t.equal((await api.get(`/v1/payments/${b.id}`)).body.status, 'succeeded', 'querydr told us');

  const r1 = await api.post(`/v1/payments/${b.id}/refunds`, { amount: 8_000 });
  t.equal(r1.body.status, 'succeeded', 'partial refund (type 03)');
  const over = await sim.transaction({}); // a request without terminal or checksum is refused
  t.equal(over.vnp_ResponseCode, '02');
  const r2 = await api.post(`/v1/payments/${b.id}/refunds`, {});
  t.equal(r2.body.status, 'succeeded');
  t.equal(sim.orders.get(b.reference)!.refunded, 58_000, "VNPay's books agree");
  t.equal((await api.get(`/v1/payments/${b.id}`)).body.status, 'refunded');

  // A checkout opened after its deadline: VNPay's code 11.
  const c = (await vnpayPayment(env, ten.keys.integration)).payment;
  env.clock.advance(16 * 60_000);
  t.same(sim.open(Object.fromEntries(new URL(c.checkout.url).searchParams)), { ok: false, code: '11' });
});

eachDb('vnpay: querydr reports only the latest refund, so two refunds left unknown are never taken for each other', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.finance);
  const sim = env.app.simulators!.vnpay;
  const p = await payAtVnpay(env, ten.keys.integration, 'success');

  // A reaches VNPay but its answer is lost; B never reaches VNPay. Both are unknown here.
  const adapter = env.app.deps.providers.get('vnpay')!;
  const refundLosing = (paymentId: string, amount: number, reaches: boolean) =>
    losingRefundAnswers(adapter, reaches, async () => (await api.post(`/v1/payments/${paymentId}/refunds`, { amount })).body as { id: string; status: string });
  const a = await refundLosing(p.id, 8_000, true);
  const b = await refundLosing(p.id, 10_000, false);
  t.same([a.status, b.status], ['unknown', 'unknown']);
  t.equal(sim.orders.get(p.reference)!.lastRefundType, '03', 'VNPay shows one partial refund');

  for (const wait of [REFUND_FIRST_CHECK_SECONDS * 1000, REFUND_NOT_FOUND_GRACE_MS, 86_400_000]) {
    env.clock.advance(wait + 1000);
    await runRefundChecks(env.app.deps);
  }
  const after = (await api.get(`/v1/payments/${p.id}/refunds`)).body.data as { id: string; status: string }[];
  t.same(
    after.map((r) => r.status),
    ['unknown', 'unknown'],
    "neither is settled on an answer that could be the other's",
  );
  t.equal((await db('ledger_transfers').where({ kind: 'refund.succeeded' })).length, 0, 'nothing booked');

  // With one refund only, the same answer settles it.
  const q = await payAtVnpay(env, ten.keys.integration, 'success');
  const only = await refundLosing(q.id, 8_000, true);
  env.clock.advance(REFUND_FIRST_CHECK_SECONDS * 1000 + 1000);
  await runRefundChecks(env.app.deps);
  t.equal((await api.get(`/v1/payments/${q.id}/refunds`)).body.data[0].status, 'succeeded', 'querydr type 03, status 05: settled');
  t.equal(only.status, 'unknown');
});
