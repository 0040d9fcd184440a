/** ZaloPay end to end through the gateway and the ZaloPay simulator, on both databases. */
import { eachDb, snapshot } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant } from './helpers/app.js';
import { runJanitor } from '../gateway/jobs/janitor.js';
import { zpMac } from '../adapters/zalopay/protocol.js';

eachDb('zalopay: create with app_trans_id, callback {data, mac} answered return_code 1, bad callbacks refused, query', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const fin = client(env.app, ten.keys.finance);
  const sim = env.app.simulators!.zalopay;

  const bill = (await api.post('/v1/bills', billInput())).body;
  const p = (await api.post('/v1/payments', { bill_id: bill.id, provider: 'zalopay' })).body;
  t.equal(p.status, 'pending');
  const id = `260310_${p.reference}`;
  t.ok(sim.orders.get(id), 'app_trans_id is yymmdd (Vietnam) + our reference');
  const o = (await sim.complete(id, 'success'))!;
  t.same(
    o.callbackAnswers.map((a) => JSON.parse(a)),
    [{ return_code: 1, return_message: 'success' }],
  );
  const paid = (await fin.get(`/v1/payments/${p.id}`)).body;
  t.equal(paid.status, 'succeeded');
  t.equal(paid.provider_transaction_id, String(o.zpTransId));

  const key2 = sim.opts.app.key2;
  const post = (body: string) => env.app.inject({ method: 'POST', url: '/v1/notify/zalopay', headers: { 'content-type': 'application/json' }, payload: body });
  const signed = (data: Record<string, unknown>) => {
    const d = JSON.stringify(data);
    return JSON.stringify({ data: d, mac: zpMac(key2, [d]), type: 1 });
  };
  const data = JSON.parse((JSON.parse(sim.callbackBody(o)) as { data: string }).data) as Record<string, unknown>;
  const before = await snapshot(db);
  t.equal((await post(sim.callbackBody(o))).json().return_code, 2, 'duplicate: already processed');
  t.equal((await post(sim.callbackBody(o).replace('"amount\\":58000', '"amount\\":1'))).json().return_code, -1, 'tampered data: mac not equal');
  t.equal((await post(signed({ ...data, app_trans_id: '260310_FGNOPE' }))).json().return_code, 0, 'unknown order');
  t.equal((await post(signed({ ...data, amount: 59_000, zp_trans_id: 1 }))).json().return_code, 0, 'wrong amount');
  t.equal((await post('{"data": 1}')).json().return_code, -1, 'malformed');
  t.same(await snapshot(db), before, 'nothing was written');

  // The browser return is verified by its checksum and credits nothing by itself.
  const ret = await env.app.inject(`/v1/return/zalopay?${sim.redirectQuery(o)}`);
  t.match(ret.body, /Thanh toán thành công/);
  const forged = await env.app.inject(`/v1/return/zalopay?${sim.redirectQuery(o).replace(/checksum=[0-9a-f]+/, 'checksum=' + '0'.repeat(64))}`);
  t.equal(forged.statusCode, 400);

  // ZaloPay says nothing about a cancelled payment: the janitor's query learns it.
  const bill2 = (await api.post('/v1/bills', billInput())).body;
  const p2 = (await api.post('/v1/payments', { bill_id: bill2.id, provider: 'zalopay' })).body;
  await sim.complete(`260310_${p2.reference}`, 'cancel');
  t.equal((await fin.get(`/v1/payments/${p2.id}`)).body.status, 'pending', 'no callback for a failure');
  env.clock.advance(60_000);
  await runJanitor(env.app.deps);
  t.equal((await fin.get(`/v1/payments/${p2.id}`)).body.status, 'failed', 'the query told us');

  const refund = await fin.post(`/v1/payments/${p.id}/refunds`, { amount: 8_000 });
  t.equal(refund.body.status, 'succeeded');
  t.equal(o.refunded, 8_000);

  // ZaloPay refusing our request (a wrong key1: mac -402) says nothing about the payment: it stays in flight.
  const bill3 = (await api.post('/v1/bills', billInput())).body;
  const p3 = (await api.post('/v1/payments', { bill_id: bill3.id, provider: 'zalopay' })).body;
  const { credentials } = await env.app.deps.providers.context('zalopay', null);
  const stored = await client(env.app, ten.keys.admin).post('/v1/provider-credentials/zalopay', { credentials: { ...credentials, key1: 'not-the-key1' } });
  t.equal(stored.status, 200, 'the unit now uses a wrong key1');
  env.clock.advance(60_000);
  await runJanitor(env.app.deps);
  t.equal((await fin.get(`/v1/payments/${p3.id}`)).body.status, 'pending', 'a refused query (bad mac) is not a failed payment');
});
