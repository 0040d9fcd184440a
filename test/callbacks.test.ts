import { eachDb, snapshot } from './helpers/db.js';
import { billAndPayment, payAt, client, makeApp, seedTenant, shortAdapterTimeout } from './helpers/app.js';
import { withSignature } from '../adapters/sandbox/protocol.js';
import { balances } from '../gateway/ledger/ledger.js';

const notify = (app: Awaited<ReturnType<typeof makeApp>>['app'], body: unknown) => client(app).post('/v1/notify/sandbox', body);

eachDb('callbacks: duplicate, out-of-order and delayed callbacks credit exactly once', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.finance);

  env.sim.queueScenario({ callback: 'duplicate' });
  const a = (await billAndPayment(env.app, ten.keys.integration)).payment;
  const oa = (await payAt(env.sim, a, 'success'))!;
  t.same(
    oa.deliveries.map((d) => JSON.parse(d.answer).code),
    ['00', '06'],
    'second delivery answered "already confirmed"',
  );

  env.sim.queueScenario({ callback: 'out_of_order' });
  const b = (await billAndPayment(env.app, ten.keys.integration)).payment;
  const ob = (await payAt(env.sim, b, 'success'))!;
  t.same(
    ob.deliveries.map((d) => JSON.parse(d.answer).code),
    ['00', '06'],
    'a stale PENDING after SUCCESS changes nothing',
  );
  t.equal((await api.get(`/v1/payments/${b.id}`)).body.status, 'succeeded');

  env.sim.queueScenario({ callback: 'delayed' });
  const c = (await billAndPayment(env.app, ten.keys.integration)).payment;
  await payAt(env.sim, c, 'success');
  t.equal((await api.get(`/v1/payments/${c.id}`)).body.status, 'pending', 'nothing arrived yet');
  t.equal(await env.sim.flush(c.reference), 1);
  t.equal((await api.get(`/v1/payments/${c.id}`)).body.status, 'succeeded');

  // A replay of the exact same message later is deduplicated.
  t.ok(await env.sim.resendLast(a.reference));
  t.equal(JSON.parse(env.sim.orders.get(a.reference)!.deliveries.at(-1)!.answer).code, '06');

  const bal = await balances(db, ten.tenantId);
  t.equal(bal.find((x) => x.account === 'fees_collected')!.credits, 3 * 58_000, 'three payments, each credited once');
  const [{ n }] = (await db('ledger_transfers').count({ n: '*' })) as [{ n: string }];
  t.equal(Number(n), 3);
});

eachDb('callbacks: bad messages are refused in the provider format and change nothing', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const { payment } = await billAndPayment(env.app, ten.keys.integration);
  const secret = env.app.deps.config.sandboxSecret;
  const ts = Math.floor(env.clock.now().getTime() / 1000);
  const good = {
    merchant: 'FEEGATE-SANDBOX',
    reference: payment.reference,
    txn_id: 'SBXTEST1',
    status: 'SUCCESS',
    code: '00',
    amount: payment.amount,
    currency: 'VND',
    paid_at: ts,
    ts,
  };
  const before = await snapshot(db);
  const cases: [string, unknown, string][] = [
    ['tampered amount after signing', { ...withSignature(good, secret), amount: 1 }, '97'],
    ['signed with another key', withSignature(good, 'not-the-secret'), '97'],
    ['no signature', good, '98'],
    ['wrong amount, correctly signed', withSignature({ ...good, amount: payment.amount + 1000 }, secret), '05'],
    ['wrong currency, correctly signed', withSignature({ ...good, currency: 'USD' }, secret), '05'],
    ['unknown order, correctly signed', withSignature({ ...good, reference: 'FGDOESNOTEXIST' }, secret), '04'],
    ['replayed after the window', withSignature({ ...good, ts: ts - 2 * 24 * 3600 }, secret), '98'],
    ['malformed JSON', '{"reference": "x", ', '98'],
    ['JSON array', '[1,2]', '98'],
    ['nested object field', { ...withSignature(good, secret), extra: { a: 1 } }, '98'],
  ];
  for (const [name, body, code] of cases) {
    const res = await notify(env.app, body);
    t.equal(res.status, 200, `${name}: answered`);
    t.equal(res.body.code, code, `${name}: provider code ${code}`);
  }
  t.same(await snapshot(db), before, 'nothing was written');
  t.equal((await client(env.app, ten.keys.finance).get(`/v1/payments/${payment.id}`)).body.status, 'pending');

  // The genuine message is then accepted.
  const ok = await notify(env.app, withSignature(good, secret));
  t.equal(ok.body.code, '00');
  t.equal((await client(env.app, ten.keys.finance).get(`/v1/payments/${payment.id}`)).body.status, 'succeeded');
});

eachDb('the browser return never credits; it shows what we hold', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  env.sim.queueScenario({ callback: 'lost' });
  const { payment } = await billAndPayment(env.app, ten.keys.integration);
  const order = (await payAt(env.sim, payment, 'success'))!;
  t.equal(order.deliveries.length, 0, 'the callback was lost');
  const before = await snapshot(db);
  const page = await env.app.inject({ method: 'GET', url: `/v1/return/sandbox?${env.sim.returnQuery(order)}` });
  t.equal(page.statusCode, 200);
  t.match(page.body, /Đang xử lý/, 'the page says processing');
  t.same(await snapshot(db), before, 'a SUCCESS in the browser URL credited nothing');

  const forged = await env.app.inject({
    method: 'GET',
    url: `/v1/return/sandbox?${env.sim.returnQuery(order).replace(/sig=[0-9a-f]+/, 'sig=' + '0'.repeat(64))}`,
  });
  t.equal(forged.statusCode, 400, 'a forged return is refused');

  // Once the provider's word arrives, the same return link shows success.
  const ts = Math.floor(env.clock.now().getTime() / 1000);
  const word = withSignature(
    {
      merchant: 'FEEGATE-SANDBOX',
      reference: payment.reference,
      txn_id: order.txnId,
      status: 'SUCCESS',
      code: '00',
      amount: payment.amount,
      currency: 'VND',
      paid_at: ts,
      ts,
    },
    env.app.deps.config.sandboxSecret,
  );
  t.equal((await notify(env.app, word)).body.code, '00');
  const again = await env.app.inject({ method: 'GET', url: `/v1/return/sandbox?${env.sim.returnQuery(order)}` });
  t.match(again.body, /Thanh toán thành công/);
});

eachDb('return_url: the payer is sent back to the portal with our status', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', (await import('./helpers/app.js')).billInput())).body;
  const p = (await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox', return_url: 'https://dichvucong.example/ket-qua?ma=1' })).body;
  const order = (await payAt(env.sim, p, 'success'))!;
  const res = await env.app.inject({ method: 'GET', url: `/v1/return/sandbox?${env.sim.returnQuery(order)}` });
  t.equal(res.statusCode, 303);
  const loc = new URL(String(res.headers.location));
  t.equal(loc.origin + loc.pathname, 'https://dichvucong.example/ket-qua');
  t.equal(loc.searchParams.get('ma'), '1');
  t.equal(loc.searchParams.get('payment_id'), p.id);
  t.equal(loc.searchParams.get('status'), 'succeeded');
});

eachDb('callbacks: a burst of concurrent callbacks (batched) credits each payment exactly once', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const secret = env.app.deps.config.sandboxSecret;
  const ts = Math.floor(env.clock.now().getTime() / 1000);
  const payments = [];
  for (let i = 0; i < 20; i++) payments.push((await billAndPayment(env.app, ten.keys.integration)).payment);
  // Each payment's success callback three times, all at once, interleaved; plus one forged.
  const bodies: Record<string, unknown>[] = payments.flatMap((p, i) => {
    const good = withSignature(
      {
        merchant: 'FEEGATE-SANDBOX',
        reference: p.reference,
        txn_id: `SBXBURST${i}`,
        status: 'SUCCESS',
        code: '00',
        amount: p.amount,
        currency: 'VND',
        paid_at: ts,
        ts,
      },
      secret,
    );
    return [good, good, good];
  });
  bodies.push({ ...bodies[0], amount: 1 });
  // In the same burst: a bill whose expired payment and its retry both succeed (late success),
  // and a payment the provider reports failed and then succeeded under another transaction id.
  // The provider holds both as paid (their own callbacks were lost): a success for a closed payment
  // is booked only when the provider's status query confirms it.
  // Those queries run inside the burst: on a loaded PGlite they may take longer than the sandbox's 5 s.
  shortAdapterTimeout(env.app, 60_000);
  const paidQuietly = async (p: { reference: string; checkout: { url?: string } | null }) => {
    env.sim.openUrl(p.checkout!.url!).scenario.callback = 'lost';
    await env.sim.complete(p.reference, 'success');
  };
  const { bill, payment: lateOne } = await billAndPayment(env.app, ten.keys.integration);
  await paidQuietly(lateOne);
  await db('payments').where({ id: lateOne.id }).update({ status: 'expired' });
  const retry = (await client(env.app, ten.keys.integration).post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' })).body;
  const twice = (await billAndPayment(env.app, ten.keys.integration)).payment;
  await paidQuietly(twice);
  const msg = (p: { reference: string; amount: number }, txn: string, status: string, code: string) =>
    withSignature(
      {
        merchant: 'FEEGATE-SANDBOX',
        reference: p.reference,
        txn_id: txn,
        status,
        code,
        amount: p.amount,
        currency: 'VND',
        paid_at: ts,
        ts,
      },
      secret,
    );
  const extra: Record<string, unknown>[] = [
    msg(lateOne, 'SBXLATE1', 'SUCCESS', '00'),
    msg(twice, 'SBXTWICE1', 'FAILED', '02'),
    msg(retry, 'SBXLATE2', 'SUCCESS', '00'),
    msg(twice, 'SBXTWICE2', 'SUCCESS', '00'),
  ];
  const all = [...bodies.slice(0, 7), extra[0]!, extra[1]!, ...bodies.slice(7, 30), extra[2]!, extra[3]!, ...bodies.slice(30)];
  const answers = await Promise.all(all.map((b) => notify(env.app, b)));
  const codes = answers.filter((_a, i) => !extra.includes(all[i]!)).map((a) => a.body.code as string);
  const extraCodes = extra.map((b) => answers[all.indexOf(b)]!.body.code as string);
  t.equal(codes.filter((c) => c === '00').length, 20, 'twenty confirmed');
  t.same([extraCodes[0], extraCodes[2], extraCodes[3]], ['00', '00', '00'], 'both successes of the bill and the success after a failure confirmed');
  t.ok(['00', '06'].includes(extraCodes[1]!), 'the failure report: applied, or refused after the success (whichever came first)');
  t.equal(codes.filter((c) => c === '06').length, 40, 'forty answered "already confirmed"');
  t.equal(codes.filter((c) => c === '97').length, 1, 'the forged one refused');
  const billAfter = (await db('bills').where({ id: bill.id }).first()) as { amount_paid: string; status: string };
  t.equal(Number(billAfter.amount_paid), 2 * 58_000, 'both payments of the bill credited it, once each');
  t.equal((await db('events').where({ object_id: bill.id, type: 'bill.paid' })).length, 1, 'bill.paid once');
  const overpaid = (await db('audit_log').whereIn('entity_id', [lateOne.id, retry.id]).andWhere({ action: 'payment.succeeded' })).filter(
    (a: { data: Record<string, unknown> }) => a.data.overpaid_by === 58_000,
  );
  t.equal(overpaid.length, 1, 'exactly one of the two is recorded as overpaying the bill');
  t.equal(((await db('payments').where({ id: twice.id }).first()) as { status: string }).status, 'succeeded', 'failed then succeeded: succeeded');
  const metrics = (await env.app.inject({ method: 'GET', url: '/metrics' })).body;
  t.notMatch(
    metrics,
    /feegate_callback_batch_fallbacks_total\{[^}]*\} [1-9]/,
    'no batch failed: the batches themselves kept one bill and one payment per statement',
  );
  t.equal((await db('ledger_transfers').where({ payment_id: twice.id })).length, 1, 'and credited once');
  for (const p of payments) {
    const credits = (await db('ledger_transfers').where({ payment_id: p.id, kind: 'payment.succeeded' })).length;
    if (credits !== 1) t.fail(`payment ${p.id} credited ${credits} times`);
  }
  const [{ n }] = (await db('payments')
    .whereIn(
      'id',
      payments.map((p) => p.id),
    )
    .where({ status: 'succeeded' })
    .count({ n: '*' })) as [{ n: string }];
  t.equal(Number(n), 20, 'all twenty succeeded, each credited once');
  const [{ e }] = (await db('provider_events').count({ e: '*' })) as [{ e: string }];
  t.equal(Number(e), 20 + 4, 'one provider event per message, duplicates not stored twice');
});
