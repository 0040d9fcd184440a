/**
 * The fault knobs every provider simulator has, through the gateway, per provider: a duplicated
 * callback credits once; delayed callbacks arriving out of order credit once each; a callback
 * arriving after the janitor already settled the payment changes nothing; a wrong amount is
 * refused; a status query that times out leaves the payment open (never failed) until a later
 * query answers.
 */
import { eachDb } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant, shortAdapterTimeout, type TestApp } from './helpers/app.js';
import { runJanitor } from '../gateway/jobs/janitor.js';
import { toQuery, type FaultKnobs, type CallbackSender } from '../adapters/simulator-kit.js';

interface Sim {
  callbacks: CallbackSender;
  orders: Map<string, { knobs: FaultKnobs }>;
}
interface Harness {
  provider: string;
  sim(env: TestApp): Sim;
  /** The order key at the simulator, and opening the checkout as the payer does. */
  open(env: TestApp, p: { reference: string; checkout: { url: string } }): string;
  pay(env: TestApp, key: string): Promise<unknown>;
  /** The signed query the provider puts on the browser's way back. */
  returnQuery(env: TestApp, key: string): string;
}

const HARNESSES: Harness[] = [
  {
    provider: 'vnpay',
    sim: (e) => e.app.simulators!.vnpay,
    open: (e, p) => {
      e.app.simulators!.vnpay.open(Object.fromEntries(new URL(p.checkout.url).searchParams));
      return p.reference;
    },
    pay: (e, k) => e.app.simulators!.vnpay.complete(k, 'success'),
    returnQuery: (e, k) => e.app.simulators!.vnpay.resultQuery(e.app.simulators!.vnpay.orders.get(k)!),
  },
  {
    provider: 'momo',
    sim: (e) => e.app.simulators!.momo,
    open: (_e, p) => p.reference,
    pay: (e, k) => e.app.simulators!.momo.complete(k, 'success'),
    returnQuery: (e, k) => toQuery(e.app.simulators!.momo.result(e.app.simulators!.momo.orders.get(k)!)),
  },
  {
    provider: 'zalopay',
    sim: (e) => e.app.simulators!.zalopay,
    open: (_e, p) => decodeURIComponent(new URL(p.checkout.url).pathname.split('/').pop()!),
    pay: (e, k) => e.app.simulators!.zalopay.complete(k, 'success'),
    returnQuery: (e, k) => e.app.simulators!.zalopay.redirectQuery(e.app.simulators!.zalopay.orders.get(k)!),
  },
  {
    provider: 'paygov',
    sim: (e) => e.app.simulators!.paygov,
    open: (_e, p) => p.reference,
    pay: (e, k) => e.app.simulators!.paygov.complete(k, 'success'),
    returnQuery: (e, k) => toQuery(e.app.simulators!.paygov.result(e.app.simulators!.paygov.orders.get(k)!)),
  },
];

for (const h of HARNESSES) {
  eachDb(`provider faults: ${h.provider}`, async (t, { db }) => {
    const env = await makeApp(db);
    t.teardown(env.close);
    const ten = await seedTenant(db, env.clock);
    const api = client(env.app, ten.keys.integration);
    const sim = h.sim(env);
    const start = async (knobs: FaultKnobs) => {
      const bill = (await api.post('/v1/bills', billInput())).body;
      const p = (await api.post('/v1/payments', { bill_id: bill.id, provider: h.provider })).body;
      const key = h.open(env, p);
      Object.assign(sim.orders.get(key)!.knobs, knobs);
      return { p, key };
    };
    const status = async (id: string) => (await api.get(`/v1/payments/${id}`)).body.status as string;
    const credits = async (id: string) => (await db('ledger_transfers').where({ payment_id: id, kind: 'payment.succeeded' })).length;

    // Duplicate.
    const dup = await start({ delivery: 'duplicate' });
    await h.pay(env, dup.key);
    t.equal(await status(dup.p.id), 'succeeded', 'duplicate: succeeded');
    t.equal(await credits(dup.p.id), 1, 'duplicate: credited once');

    // Delayed, then delivered out of order.
    const d1 = await start({ delivery: 'delayed' });
    const d2 = await start({ delivery: 'delayed' });
    await h.pay(env, d1.key);
    await h.pay(env, d2.key);
    t.equal(await status(d1.p.id), 'pending', 'delayed: nothing yet');
    t.equal(await sim.callbacks.flush(), 2, 'two held callbacks sent, newest first');
    t.same([await status(d1.p.id), await status(d2.p.id)], ['succeeded', 'succeeded'], 'out of order: both succeeded');
    t.same([await credits(d1.p.id), await credits(d2.p.id)], [1, 1]);

    // The janitor settles first; the late callback changes nothing.
    const late = await start({ delivery: 'delayed' });
    await h.pay(env, late.key);
    env.clock.advance(60_000);
    await runJanitor(env.app.deps);
    t.equal(await status(late.p.id), 'succeeded', 'late: the janitor settled it by query');
    await sim.callbacks.flush();
    t.equal(await credits(late.p.id), 1, 'late: the callback after it changed nothing');

    // The browser comes back with a valid signed success, the callback is lost: nothing is credited.
    const back = await start({ delivery: 'lost' });
    await h.pay(env, back.key);
    const ret = await env.app.inject({ method: 'GET', url: `/v1/return/${h.provider}?${h.returnQuery(env, back.key)}` });
    t.equal(ret.statusCode, 200, `the signed return verifies (${ret.body.slice(0, 80)})`);
    t.equal(await status(back.p.id), 'pending', 'the browser return never credits by itself');
    t.equal(await credits(back.p.id), 0);

    // Wrong amount: refused.
    const wrong = await start({ wrongAmount: true });
    await h.pay(env, wrong.key);
    t.equal(await status(wrong.p.id), 'pending', 'wrong amount: refused, nothing credited');
    t.equal(await credits(wrong.p.id), 0);

    // The query times out: the payment stays open, never failed; a later query settles it.
    const slow = await start({ delivery: 'lost', queryHangMs: 400 });
    await h.pay(env, slow.key);
    const restore = shortAdapterTimeout(env.app, 100);
    env.clock.advance(60_000);
    await runJanitor(env.app.deps);
    restore();
    t.ok(['pending', 'unknown'].includes(await status(slow.p.id)), `query timeout: still open (${await status(slow.p.id)}), not failed`);
    sim.orders.get(slow.key)!.knobs.queryHangMs = 0;
    env.clock.advance(10 * 60_000);
    await runJanitor(env.app.deps);
    t.equal(await status(slow.p.id), 'succeeded', 'a later query settles it');
    await new Promise((r) => setTimeout(r, 450)); // let the hung simulator request finish
  });
}
