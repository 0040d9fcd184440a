/**
 * Issue 10, "callback batch poisoning": callbacks that arrive together share their statements, so
 * one unauthenticated message with a NUL in its reference used to fail the shared lookup of every
 * genuine callback batched with it (500, not applied). References are now checked against our
 * format before any statement, and a batch that fails is retried item by item.
 */
import t from 'tap';
import { eachDb, snapshot } from './helpers/db.js';
import { billAndPayment, billInput, client, makeApp, seedTenant, type TestApp } from './helpers/app.js';
import { withSignature } from '../adapters/sandbox/protocol.js';
import { Batcher } from '../gateway/db/batcher.js';
import { newReference } from '../gateway/payments/payments.js';
import { isOurReference, storable } from '../gateway/callbacks/references.js';

interface Genuine {
  paymentId: string;
  provider: string;
  send(): Promise<{ statusCode: number; body: string }>;
  ok(res: { statusCode: number; body: string }): boolean;
}

/** A unit's payments with VNPay, MoMo and the sandbox, paid at the provider, whose callbacks were lost: the signed messages, to send later. */
async function genuineCallbacks(env: TestApp, key: string, perProvider: number): Promise<Genuine[]> {
  const api = client(env.app, key);
  const { vnpay, momo } = env.app.simulators!;
  const out: Genuine[] = [];
  for (let i = 0; i < perProvider; i++) {
    for (const provider of ['vnpay', 'momo'] as const) {
      const bill = (await api.post('/v1/bills', billInput())).body;
      const p = (await api.post('/v1/payments', { bill_id: bill.id, provider })).body;
      if (provider === 'vnpay') {
        vnpay.open(Object.fromEntries(new URL(p.checkout.url).searchParams));
        vnpay.orders.get(p.reference)!.knobs.delivery = 'lost';
        const order = (await vnpay.complete(p.reference, 'success'))!;
        const url = `/v1/notify/vnpay?${vnpay.resultQuery(order)}`;
        out.push({ paymentId: p.id, provider, send: () => env.app.inject(url), ok: (r) => r.statusCode === 200 && JSON.parse(r.body).RspCode === '00' });
      } else {
        momo.orders.get(p.reference)!.knobs.delivery = 'lost';
        const order = (await momo.complete(p.reference, 'success'))!;
        const payload = JSON.stringify(momo.result(order));
        out.push({
          paymentId: p.id,
          provider,
          send: () => env.app.inject({ method: 'POST', url: '/v1/notify/momo', headers: { 'content-type': 'application/json' }, payload }),
          ok: (r) => r.statusCode === 204,
        });
      }
    }
    const { payment } = await billAndPayment(env.app, key);
    const ts = Math.floor(env.clock.now().getTime() / 1000);
    const payload = JSON.stringify(
      withSignature(
        {
          merchant: 'FEEGATE-SANDBOX',
          reference: payment.reference,
          txn_id: `SBXPOISON${payment.reference}`,
          status: 'SUCCESS',
          code: '00',
          amount: payment.amount,
          currency: 'VND',
          paid_at: ts,
          ts,
        },
        env.app.deps.config.sandboxSecret,
      ),
    );
    out.push({
      paymentId: payment.id,
      provider: 'sandbox',
      send: () => env.app.inject({ method: 'POST', url: '/v1/notify/sandbox', headers: { 'content-type': 'application/json' }, payload }),
      ok: (r) => r.statusCode === 200 && JSON.parse(r.body).code === '00',
    });
  }
  return out;
}

/** The attack's messages: no signature, a reference no statement can hold (NUL, lone surrogate). */
function poisons(env: TestApp, sandboxReference: string, sandboxAmount: number) {
  const json = (url: string, body: string) => () => env.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: body });
  const ts = Math.floor(env.clock.now().getTime() / 1000);
  // Correctly signed (the sandbox secret is known in sandbox mode) for a real payment, with a NUL in a field we store.
  const signedNul = JSON.stringify(
    withSignature(
      {
        merchant: 'FEEGATE-SANDBOX',
        reference: sandboxReference,
        txn_id: 'SBX\u0000NUL',
        status: 'SUCCESS',
        code: '00',
        amount: sandboxAmount,
        currency: 'VND',
        paid_at: ts,
        ts,
      },
      env.app.deps.config.sandboxSecret,
    ),
  );
  return [
    json('/v1/notify/momo', '{"orderId":"P\\u0000"}'),
    () => env.app.inject('/v1/notify/vnpay?vnp_TxnRef=%00'),
    () => env.app.inject('/v1/return/vnpay?vnp_TxnRef=%00'),
    () => env.app.inject('/v1/return/momo?orderId=%00'),
    json('/v1/notify/momo', '{"orderId":"\\ud800"}'),
    json('/v1/notify/sandbox', '{"reference":"FG\\u0000"}'),
    json('/v1/notify/paygov', '{"orderId":"\\u0000"}'),
    json('/v1/notify/zalopay', JSON.stringify({ data: JSON.stringify({ app_trans_id: '260310_P\u0000' }), mac: 'x' })),
    () => env.app.inject('/v1/return/zalopay?apptransid=260310_%00'),
    () => env.app.inject('/v1/return/sandbox?reference=%00'),
    json('/v1/notify/sandbox', signedNul),
  ];
}

eachDb('callback poisoning: NUL references inside a burst of genuine signed callbacks of two units fail none of them', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const a = await seedTenant(db, env.clock);
  const b = await seedTenant(db, env.clock);
  const genuine = [...(await genuineCallbacks(env, a.keys.integration, 8)), ...(await genuineCallbacks(env, b.keys.integration, 8))];
  const target = (await billAndPayment(env.app, b.keys.integration)).payment;
  const bad = poisons(env, target.reference, target.amount);
  // Interleave: a poison every few genuine callbacks, so that batches mix both.
  const burst: { poison: boolean; i: number; send: () => Promise<{ statusCode: number; body: string }> }[] = [];
  genuine.forEach((g, i) => {
    burst.push({ poison: false, i, send: g.send });
    if (i % 4 === 1) burst.push({ poison: true, i: (i >> 2) % bad.length, send: bad[(i >> 2) % bad.length]! });
  });
  for (let round = 0; round < 2; round++) {
    const answers = await Promise.all(burst.map((x) => x.send()));
    burst.forEach((x, k) => {
      const res = answers[k]!;
      if (x.poison) {
        if (res.statusCode >= 500) t.fail(`poison ${x.i} answered ${res.statusCode}: ${res.body}`);
      } else if (round === 0 && !genuine[x.i]!.ok(res)) {
        t.fail(`genuine ${genuine[x.i]!.provider} callback ${x.i} answered ${res.statusCode}: ${res.body}`);
      } else if (res.statusCode >= 500) {
        t.fail(`replayed ${genuine[x.i]!.provider} callback ${x.i} answered ${res.statusCode}`);
      }
    });
  }
  const rows = (await db('payments')
    .whereIn(
      'id',
      genuine.map((g) => g.paymentId),
    )
    .select('id', 'status')) as { id: string; status: string }[];
  t.equal(rows.filter((r) => r.status === 'succeeded').length, genuine.length, `all ${genuine.length} genuine callbacks applied`);
  const credits = (await db('ledger_transfers')
    .whereIn(
      'payment_id',
      genuine.map((g) => g.paymentId),
    )
    .where({ kind: 'payment.succeeded' })) as unknown[];
  t.equal(credits.length, genuine.length, 'each credited once');
  t.equal(((await db('payments').where({ id: target.id }).first()) as { status: string }).status, 'pending', 'the signed message with a NUL changed nothing');
});

eachDb('callback poisoning: poison alone changes nothing and is answered in the provider format, without a 5xx', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const target = (await billAndPayment(env.app, ten.keys.integration)).payment;
  const before = await snapshot(db);
  for (const [i, send] of poisons(env, target.reference, target.amount).entries()) {
    const res = await send();
    t.ok(res.statusCode < 500, `poison ${i}: ${res.statusCode}`);
  }
  const momo = await env.app.inject({
    method: 'POST',
    url: '/v1/notify/momo',
    headers: { 'content-type': 'application/json' },
    payload: '{"orderId":"P\\u0000"}',
  });
  t.same([momo.statusCode, momo.json().message], [400, 'bad_signature'], 'MoMo, in sandbox mode (test credentials to verify with): unsigned, refused as such');
  t.equal((await env.app.inject('/v1/notify/vnpay?vnp_TxnRef=%00')).json().RspCode, '97', 'VNPay: unsigned, refused as such');
  t.equal((await env.app.inject('/v1/return/vnpay?vnp_TxnRef=%00')).statusCode, 400, 'a return link for no order: 400 page');
  t.same(await snapshot(db), before, 'nothing was written');
});

t.test('references: the format checked is the one we issue', async (t) => {
  for (let i = 0; i < 200; i++) {
    const r = newReference();
    if (!isOurReference(r)) t.fail(`newReference() gave ${r}, which the callback check refuses`);
  }
  for (const bad of ['P\u0000', 'FG\u0000', '', 'FGDOESNOTEXIST', `${newReference()}\u0000`, newReference().toLowerCase(), `${newReference()}0`, '\ud800']) {
    t.notOk(isOurReference(bad), `refused: ${JSON.stringify(bad)}`);
  }
  t.ok(storable({ a: ['b', { c: 'Thanh toán 😀' }] }));
  t.notOk(storable({ a: ['b', { c: 'x\u0000' }] }), 'a NUL deep inside');
  t.notOk(storable({ 'k\ud800': 1 }), 'a lone surrogate in a key');
  t.notOk(storable(['\udc00']), 'a lone low surrogate');
});

t.test('Batcher: a batch that fails is retried item by item; only the bad item fails', async (t) => {
  const calls: number[][] = [];
  let failed: number[] | undefined;
  const b = new Batcher<number, number>(
    async (items) => {
      calls.push(items);
      await new Promise((r) => setTimeout(r, 5));
      if (items.includes(13)) throw new Error('13 poisons its batch');
      return items.map((x) => x * 2);
    },
    {
      maxConcurrent: 1,
      onBatchFailed: (_err, items) => {
        failed = items;
      },
    },
  );
  const results = await Promise.allSettled([1, 2, 13, 4, 5].map((x) => b.submit(x)));
  t.same(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    [2, 4, '13 poisons its batch', 8, 10],
  );
  t.same(failed, [2, 13, 4, 5], 'the failed batch was reported once, with its items');
  t.same(calls, [[1], [2, 13, 4, 5], [2], [13], [4], [5]], 'the first went alone at once; the batch that failed went again one by one');
});
