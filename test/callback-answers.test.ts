/**
 * Issue 10 (medium): whatever happens on a callback route, the provider gets an answer in its own
 * format: "order not found" for an order we do not hold (production mode too, where there are no
 * credentials to verify with), its retry code for our own failure, a refusal for a hostile body
 * (JSON nested 10,000 levels, oversize, not JSON); never Fastify's JSON 500, never a stack overflow.
 */
import { eachDb, snapshot } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant, type TestApp } from './helpers/app.js';
import { newReference } from '../gateway/payments/payments.js';
import { NOTIFY_BODY_LIMIT } from '../gateway/callbacks/routes.js';

type Res = { statusCode: number; body: string; headers: Record<string, unknown> };
const post = (env: TestApp, provider: string, payload: string, contentType = 'application/json') =>
  env.app.inject({ method: 'POST', url: `/v1/notify/${provider}`, headers: { 'content-type': contentType }, payload }) as Promise<Res>;
const json = (r: Res) => JSON.parse(r.body) as Record<string, unknown>;

eachDb('callback answers: production mode, an order we do not hold is the provider\'s "order not found", not a 500', async (t, { db }) => {
  const env = await makeApp(db, { sandbox: false });
  t.teardown(env.close);
  await seedTenant(db, env.clock);
  const before = await snapshot(db);
  for (const ref of [newReference(), 'FGNOPE']) {
    const vnpay = (await env.app.inject(`/v1/notify/vnpay?vnp_TxnRef=${ref}&vnp_Amount=5800000&vnp_SecureHash=00`)) as Res;
    t.same([vnpay.statusCode, json(vnpay).RspCode], [200, '01'], `VNPay ${ref}: RspCode 01 (order not found)`);
    const momo = await post(env, 'momo', JSON.stringify({ orderId: ref, amount: 58000, signature: '00' }));
    t.equal(momo.statusCode, 404, `MoMo ${ref}: 404 (order not found)`);
    const zalopay = await post(env, 'zalopay', JSON.stringify({ data: JSON.stringify({ app_trans_id: `260310_${ref}`, amount: 58000 }), mac: '00', type: 1 }));
    t.same([zalopay.statusCode, json(zalopay).return_code, json(zalopay).return_message], [200, 0, 'order not found'], `ZaloPay ${ref}: order not found`);
    const paygov = await post(env, 'paygov', JSON.stringify({ orderId: ref, amount: 58000, checksum: '00' }));
    t.same([paygov.statusCode, json(paygov).code], [200, '01'], `PayGov ${ref}: code 01 (order not found)`);
    for (const url of [
      `/v1/return/vnpay?vnp_TxnRef=${ref}`,
      `/v1/return/momo?orderId=${ref}`,
      `/v1/return/zalopay?apptransid=260310_${ref}`,
      `/v1/return/paygov?orderId=${ref}`,
    ]) {
      t.equal((await env.app.inject(url)).statusCode, 400, `${url}: the "could not verify" page`);
    }
  }
  t.same(await snapshot(db), before, 'nothing was written');
});

/** One payment per provider, paid at the provider, its callback lost: the genuine signed message, to send ourselves. */
async function lostCallbacks(env: TestApp, key: string) {
  const api = client(env.app, key);
  const { vnpay, momo, zalopay, paygov } = env.app.simulators!;
  const pay = async (provider: string) => (await api.post('/v1/payments', { bill_id: (await api.post('/v1/bills', billInput())).body.id, provider })).body;
  const v = await pay('vnpay');
  vnpay.open(Object.fromEntries(new URL(v.checkout.url).searchParams));
  vnpay.orders.get(v.reference)!.knobs.delivery = 'lost';
  const vq = vnpay.resultQuery((await vnpay.complete(v.reference, 'success'))!);
  const m = await pay('momo');
  momo.orders.get(m.reference)!.knobs.delivery = 'lost';
  const mb = JSON.stringify(momo.result((await momo.complete(m.reference, 'success'))!));
  const z = await pay('zalopay');
  const zid = [...zalopay.orders.keys()].find((k) => k.endsWith(`_${z.reference}`))!;
  zalopay.orders.get(zid)!.knobs.delivery = 'lost';
  const zb = zalopay.callbackBody((await zalopay.complete(zid, 'success'))!);
  const g = await pay('paygov');
  paygov.orders.get(g.reference)!.knobs.delivery = 'lost';
  const gb = JSON.stringify(paygov.result((await paygov.complete(g.reference, 'success'))!));
  return {
    ids: [v.id, m.id, z.id, g.id] as string[],
    send: {
      vnpay: () => env.app.inject(`/v1/notify/vnpay?${vq}`) as Promise<Res>,
      momo: () => post(env, 'momo', mb),
      zalopay: () => post(env, 'zalopay', zb),
      paygov: () => post(env, 'paygov', gb),
    },
  };
}

eachDb("callback answers: a database failure on a callback is answered with each provider's retry code, and the retry is applied", async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const { ids, send } = await lostCallbacks(env, ten.keys.integration);
  // The database fails under the callback: the table it records provider messages in is gone.
  await db.raw('ALTER TABLE provider_events RENAME TO provider_events_away');
  const vnpay = await send.vnpay();
  t.same([vnpay.statusCode, json(vnpay).RspCode], [200, '99'], 'VNPay: RspCode 99 (unknown error: VNPay retries)');
  const momo = await send.momo();
  t.ok(momo.statusCode >= 300, `MoMo: non-2xx (${momo.statusCode}), so MoMo retries`);
  t.equal(json(momo).message, 'error', "in the MoMo answer's own shape");
  const zalopay = await send.zalopay();
  t.same([zalopay.statusCode, json(zalopay).return_code], [200, 0], 'ZaloPay: return_code 0 (ZaloPay calls back again)');
  const paygov = await send.paygov();
  t.same([paygov.statusCode, json(paygov).code], [200, '99'], 'PayGov: code 99 (system error: the hub retries)');
  t.equal(
    ((await db('payments').whereIn('id', ids).where({ status: 'succeeded' }).count({ n: '*' })) as [{ n: string }])[0].n.toString(),
    '0',
    'nothing applied',
  );

  // A thrown error before any statement (the credential store failing) gets the same answer.
  const providers = env.app.deps.providers;
  const real = providers.context.bind(providers);
  providers.context = async () => {
    throw new Error('credential store unavailable');
  };
  const thrown = await send.vnpay();
  providers.context = real;
  t.same([thrown.statusCode, json(thrown).RspCode], [200, '99'], 'a thrown error: VNPay RspCode 99');

  // The provider's retry, once the database is back, is applied.
  await db.raw('ALTER TABLE provider_events_away RENAME TO provider_events');
  t.equal(json(await send.vnpay()).RspCode, '00');
  t.equal((await send.momo()).statusCode, 204);
  t.equal(json(await send.zalopay()).return_code, 1);
  t.equal(json(await send.paygov()).code, '00');
  t.equal(
    ((await db('payments').whereIn('id', ids).where({ status: 'succeeded' }).count({ n: '*' })) as [{ n: string }])[0].n.toString(),
    '4',
    'all four applied on retry',
  );
});

eachDb('callback answers: deep, oversize and non-JSON bodies are refused in the provider format, never a 5xx', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  await seedTenant(db, env.clock);
  const deepArray = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
  const deepObject = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
  const ref = newReference();
  const bodies: [string, string, string?][] = [
    ['JSON array nested 10,000 levels', deepArray],
    ['JSON object nested 10,000 levels', deepObject],
    ['a field nested 10,000 levels', `{"orderId":"${ref}","reference":"${ref}","amount":58000,"extraData":${deepObject},"x":${deepArray}}`],
    ['ZaloPay data nested 10,000 levels', JSON.stringify({ data: `{"app_trans_id":"260310_${ref}","item":${deepArray}}`, mac: '00' })],
    ['not JSON', 'orderId=FG&amount=1'],
    ['broken JSON', '{"orderId":'],
    ['empty', ''],
    ['binary', '\u0000\u0001\uffff'],
    ['oversize (just over the limit)', JSON.stringify({ orderId: ref, pad: 'x'.repeat(NOTIFY_BODY_LIMIT) })],
    ['oversize (2 MiB)', JSON.stringify({ orderId: ref, pad: 'x'.repeat(2 * 1024 * 1024) })],
    ['form-encoded', 'orderId=FG', 'application/x-www-form-urlencoded'],
    ['no content type', '{"orderId":"FG"}', ''],
  ];
  // What each provider answers to a message it sent wrong: its refusal, never its retry or a 5xx.
  const refusal: Record<string, (r: Res) => boolean> = {
    momo: (r) => r.statusCode >= 400 && r.statusCode < 500 && ['malformed', 'bad_signature', 'unknown_order'].includes(json(r).message as string),
    zalopay: (r) => r.statusCode === 200 && [-1, 0].includes(json(r).return_code as number),
    paygov: (r) => r.statusCode === 200 && ['99', '97', '01'].includes(json(r).code as string),
    sandbox: (r) => r.statusCode === 200 && typeof json(r).code === 'string' && json(r).code !== '00',
  };
  const before = await snapshot(db);
  for (const provider of Object.keys(refusal)) {
    for (const [name, body, type] of bodies) {
      const res = (await env.app.inject({
        method: 'POST',
        url: `/v1/notify/${provider}`,
        payload: body,
        headers: type === '' ? {} : { 'content-type': type ?? 'application/json' },
      })) as Res;
      let ok = false;
      try {
        ok = refusal[provider]!(res);
      } catch {
        /* not JSON: not the provider's format */
      }
      t.ok(ok, `${provider}, ${name}: ${res.statusCode} ${res.body.slice(0, 120)}`);
    }
  }
  // VNPay notifies by GET: a body is ignored, and a hostile query is refused in its format.
  const vn = (await env.app.inject({ method: 'GET', url: `/v1/notify/vnpay?vnp_TxnRef=${ref}&x=${'%5B'.repeat(10_000)}` })) as Res;
  t.ok(vn.statusCode === 200 && ['97', '99', '01'].includes(json(vn).RspCode as string), `VNPay, hostile query: ${vn.body}`);
  t.same(await snapshot(db), before, 'nothing was written');
});
