/** MoMo end to end through the gateway and the MoMo simulator, on both databases. */
import { eachDb, snapshot } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant } from './helpers/app.js';
import { runJanitor } from '../gateway/jobs/janitor.js';
import { IPN_KEYS, momoSign } from '../adapters/momo/protocol.js';

eachDb('momo: create call, IPN POST answered 204, bad IPNs refused, lost IPN recovered by query', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const fin = client(env.app, ten.keys.finance);
  const sim = env.app.simulators!.momo;

  const bill = (await api.post('/v1/bills', billInput())).body;
  const p = (await api.post('/v1/payments', { bill_id: bill.id, provider: 'momo' })).body;
  t.equal(p.status, 'pending');
  t.match(p.checkout, { type: 'redirect', url: /\/sandbox\/momo\/pay\//, deeplink: /^momo:\/\//, qr_payload: /\S/ });
  const order = sim.orders.get(p.reference)!;
  t.equal(order.amount, 58_000, 'MoMo holds the order for the right amount');

  await sim.complete(p.reference, 'success');
  t.same(order.ipnStatuses, [204], 'the IPN was answered 204');
  t.equal((await fin.get(`/v1/payments/${p.id}`)).body.status, 'succeeded');

  const partner = sim.opts.partner;
  const ipn = (f: Record<string, unknown>) =>
    env.app.inject({
      method: 'POST',
      url: '/v1/notify/momo',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ ...f, signature: momoSign(partner.secretKey, { ...f, accessKey: partner.accessKey }, IPN_KEYS) }),
    });
  const good = { ...sim.result(order) };
  delete good.signature;
  const before = await snapshot(db);
  t.equal((await ipn(good)).statusCode, 204, 'a duplicate is acknowledged');
  t.equal((await ipn({ ...good, orderId: 'FGNOPE', requestId: 'FGNOPE' })).statusCode, 404, 'unknown order');
  t.equal((await ipn({ ...good, amount: 59_000, transId: 1 })).statusCode, 400, 'wrong amount');
  t.equal(
    (
      await env.app.inject({
        method: 'POST',
        url: '/v1/notify/momo',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ ...sim.result(order), amount: 1 }),
      })
    ).statusCode,
    400,
    'tampered',
  );
  t.equal(
    (await env.app.inject({ method: 'POST', url: '/v1/notify/momo', headers: { 'content-type': 'application/json' }, payload: '{"orderId":' })).statusCode,
    400,
    'malformed',
  );
  t.same(await snapshot(db), before, 'nothing was written');

  // A lost IPN: the janitor's query finds the payment.
  const bill2 = (await api.post('/v1/bills', billInput())).body;
  const p2 = (await api.post('/v1/payments', { bill_id: bill2.id, provider: 'momo' })).body;
  sim.orders.get(p2.reference)!.knobs.delivery = 'lost';
  await sim.complete(p2.reference, 'success');
  t.equal((await fin.get(`/v1/payments/${p2.id}`)).body.status, 'pending');
  env.clock.advance(60_000);
  await runJanitor(env.app.deps);
  t.equal((await fin.get(`/v1/payments/${p2.id}`)).body.status, 'succeeded', 'recovered by query');

  // MoMo refuses what it would refuse: an amount out of range at create.
  const tiny = (await api.post('/v1/bills', billInput({ items: [{ fee_code: 'X', name: 'Phí nhỏ', amount: 500 }] }))).body;
  const refused = (await api.post('/v1/payments', { bill_id: tiny.id, provider: 'momo' })).body;
  t.equal(refused.status, 'failed');
  t.match(refused.failure, { code: 'momo_22' });
});
