/**
 * Each adapter declares its provider's largest payment (adapters/contract.ts maxAmount); a payment
 * above it is refused at creation with FEEGATE_ERR_PAYMENT_ABOVE_PROVIDER_MAX and writes nothing.
 * And a callback dated years ahead is refused in the provider's own format, changing nothing.
 */
import { eachDb, snapshot } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant } from './helpers/app.js';
import { VNPAY_MAX_AMOUNT, secureHash, vnpDate } from '../adapters/vnpay/protocol.js';

eachDb("provider limits: a payment above the provider's maximum is refused at creation", async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const big = (await api.post('/v1/bills', billInput({ items: [{ fee_code: 'X', name: 'Tiền thuê đất', amount: 95_000_000_000_000 }] }))).body;
  const before = await snapshot(db);
  const vn = await api.post('/v1/payments', { bill_id: big.id, provider: 'vnpay' });
  t.equal(vn.status, 400);
  t.match(vn.body, { error: { code: 'FEEGATE_ERR_PAYMENT_ABOVE_PROVIDER_MAX', details: { max_amount: VNPAY_MAX_AMOUNT } } });
  t.same(await snapshot(db), before, 'nothing written');
  const mid = (await api.post('/v1/bills', billInput({ items: [{ fee_code: 'X', name: 'Học phí', amount: 60_000_000 }] }))).body;
  const before2 = await snapshot(db);
  const momo = await api.post('/v1/payments', { bill_id: mid.id, provider: 'momo' });
  t.match(
    momo,
    { status: 400, body: { error: { code: 'FEEGATE_ERR_PAYMENT_ABOVE_PROVIDER_MAX', details: { max_amount: 50_000_000 } } } },
    "MoMo's wallet limit",
  );
  t.same(await snapshot(db), before2, 'nothing written');
  t.equal((await api.post('/v1/payments', { bill_id: mid.id, provider: 'vnpay' })).status, 201, 'the same bill through a provider that takes it');
});

eachDb('provider limits: a VNPay IPN dated ten years ahead is refused (RspCode 99) and changes nothing', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  const p = (await api.post('/v1/payments', { bill_id: bill.id, provider: 'vnpay' })).body;
  const sim = env.app.simulators!.vnpay;
  const { terminal } = sim.opts;
  const params: Record<string, string> = {
    vnp_Amount: String(p.amount * 100),
    vnp_BankCode: 'NCB',
    vnp_OrderInfo: 'Le phi',
    vnp_PayDate: vnpDate(new Date(env.clock.now().getTime() + 10 * 365 * 24 * 3600 * 1000)),
    vnp_ResponseCode: '00',
    vnp_TmnCode: terminal.tmnCode,
    vnp_TransactionNo: '14000001',
    vnp_TransactionStatus: '00',
    vnp_TxnRef: p.reference,
  };
  const before = await snapshot(db);
  const res = await env.app.inject({
    method: 'GET',
    url: `/v1/notify/vnpay?${new URLSearchParams({ ...params, vnp_SecureHash: secureHash(params, terminal.secret) })}`,
  });
  t.same(JSON.parse(res.body), { RspCode: '99', Message: 'Input data required' });
  t.same(await snapshot(db), before, 'nothing written');
  t.equal((await client(env.app, ten.keys.finance).get(`/v1/payments/${p.id}`)).body.status, 'pending');
});
