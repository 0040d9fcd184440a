/**
 * Property: whatever the interleaving of the payer's choice, browser returns, duplicated, delayed,
 * lost and out-of-order callbacks, janitor queries, refunds and outbox runs, every payment ends in
 * the provider's truth, is credited at most once, is never refunded above what was collected, the
 * journal agrees with the payments, and the audit chain verifies.
 */
import fc from 'fast-check';
import { eachDb } from './helpers/db.js';
import { billAndPayment, billInput, client, losingRefundAnswers, makeApp, seedTenant, shortAdapterTimeout } from './helpers/app.js';
import { runJanitor } from '../gateway/jobs/janitor.js';
import { runRefundChecks } from '../gateway/jobs/refund-checks.js';
import type { CallbackSender, FaultKnobs } from '../adapters/simulator-kit.js';
import { drainOutbox } from '../gateway/outbox/outbox.js';
import { sealAudit, verifyAudit } from '../gateway/audit/audit-log.js';
import { balances } from '../gateway/ledger/ledger.js';
import type { Scenario } from '../adapters/sandbox/simulator.js';

type Truth = 'success' | 'fail' | 'cancel' | 'never';
type Action =
  | { a: 'pay'; i: number }
  | { a: 'return'; i: number }
  | { a: 'resend'; i: number }
  | { a: 'flush' }
  | { a: 'janitor'; minutes: number }
  | { a: 'refund'; i: number; amount: number }
  | { a: 'outbox' };

const N = 3;
const payments = fc.array(
  fc.record({
    truth: fc.constantFrom<Truth>('success', 'success', 'fail', 'cancel', 'never'),
    callback: fc.constantFrom<NonNullable<Scenario['callback']>>('normal', 'lost', 'duplicate', 'delayed', 'out_of_order'),
    opened: fc.boolean(),
  }),
  { minLength: N, maxLength: N },
);
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ a: fc.constant('pay' as const), i: fc.nat(N - 1) }),
  fc.record({ a: fc.constant('return' as const), i: fc.nat(N - 1) }),
  fc.record({ a: fc.constant('resend' as const), i: fc.nat(N - 1) }),
  fc.record({ a: fc.constant('flush' as const) }),
  fc.record({ a: fc.constant('janitor' as const), minutes: fc.integer({ min: 1, max: 120 }) }),
  fc.record({ a: fc.constant('refund' as const), i: fc.nat(N - 1), amount: fc.integer({ min: 1, max: 70_000 }) }),
  fc.record({ a: fc.constant('outbox' as const) }),
);

eachDb("property: any interleaving ends in the provider's truth, credited once, refunds bounded, books and chain valid", async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const deps = env.app.deps;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(payments, fc.array(action, { minLength: 5, maxLength: 25 }), async (specs, actions) => {
      runs++;
      const ten = await seedTenant(db, env.clock);
      const fin = client(env.app, ten.keys.finance);
      const ps = [];
      for (const spec of specs) {
        const { payment } = await billAndPayment(env.app, ten.keys.integration);
        if (spec.opened || spec.truth !== 'never') {
          env.sim.queueScenario({ callback: spec.callback });
          env.sim.openUrl(payment.checkout.url);
        }
        ps.push({ ...payment, spec, paid: false });
      }
      for (const act of actions) {
        const p = 'i' in act ? ps[act.i]! : undefined;
        switch (act.a) {
          case 'pay':
            if (p!.spec.truth !== 'never' && !p!.paid) {
              p!.paid = true;
              await env.sim.complete(p!.reference, p!.spec.truth as 'success');
            }
            break;
          case 'return': {
            const o = env.sim.orders.get(p!.reference);
            if (o) await env.app.inject({ method: 'GET', url: `/v1/return/sandbox?${env.sim.returnQuery(o)}` });
            break;
          }
          case 'resend':
            await env.sim.resendLast(p!.reference);
            break;
          case 'flush':
            await env.sim.flush();
            break;
          case 'janitor':
            env.clock.advance(act.minutes * 60_000);
            await runJanitor(deps);
            break;
          case 'refund':
            await fin.post(`/v1/payments/${p!.id}/refunds`, { amount: act.amount });
            break;
          case 'outbox':
            await drainOutbox(deps, deps.handlers);
            break;
        }
      }
      // Let the world settle: every payer who was going to pay has paid; time passes; the janitor asks.
      for (const p of ps)
        if (p.spec.truth !== 'never' && !p.paid) {
          p.paid = true;
          await env.sim.complete(p.reference, p.spec.truth as 'success');
        }
      for (let k = 0; k < 4; k++) {
        env.clock.advance(6 * 3600_000);
        await runJanitor(deps);
      }
      await drainOutbox(deps, deps.handlers);
      env.clock.advance(60_000); // an adjustment that waited for its original retries
      await drainOutbox(deps, deps.handlers);

      let collected = 0;
      let receiptsWanted = 0;
      let refunded = 0;
      for (const p of ps) {
        const now = (await fin.get(`/v1/payments/${p.id}`)).body;
        // The provider's truth: what its own books say (a payer too late finds the order closed).
        const truth = env.sim.orders.get(p.reference)?.status ?? 'NONE';
        const want = {
          SUCCESS: ['succeeded', 'partially_refunded', 'refunded'],
          FAILED: ['failed'],
          CANCELLED: ['cancelled', 'expired'],
          PENDING: ['expired'],
          NONE: ['expired'],
        }[truth];
        if (!want.includes(now.status)) throw new Error(`payment ${p.spec.truth}/${p.spec.callback}: provider says ${truth}, we say ${now.status}`);
        const credits = (await db('ledger_transfers').where({ payment_id: p.id, kind: 'payment.succeeded' })).length;
        if (credits !== (truth === 'SUCCESS' ? 1 : 0)) throw new Error(`credited ${credits} times`);
        const refunds = (await fin.get(`/v1/payments/${p.id}/refunds`)).body.data as { amount: number; status: string }[];
        const ok = refunds.filter((r) => r.status === 'succeeded').reduce((a, r) => a + r.amount, 0);
        if (ok > now.amount || ok !== now.amount_refunded) throw new Error(`refunded ${ok} of ${now.amount} (payment says ${now.amount_refunded})`);
        // Exactly one receipt per succeeded payment, one adjustment per succeeded refund.
        const rcpts = (await db('receipts').where({ payment_id: p.id })) as { kind: string; amount: string | number; refund_id: string | null }[];
        const originals = rcpts.filter((r) => r.kind === 'original');
        if (originals.length !== (truth === 'SUCCESS' ? 1 : 0)) throw new Error(`payment ${truth}: ${originals.length} receipts`);
        if (originals[0] && Number(originals[0].amount) !== now.amount) throw new Error('receipt amount differs from the payment');
        const okRefunds = refunds.filter((r) => r.status === 'succeeded') as { id?: string; amount: number }[];
        const adjustments = rcpts.filter((r) => r.kind === 'adjustment');
        if (adjustments.length !== okRefunds.length) throw new Error(`${okRefunds.length} refunds, ${adjustments.length} adjustments`);
        receiptsWanted += rcpts.length;
        if (now.status === 'succeeded' || now.status === 'partially_refunded' || now.status === 'refunded') collected += now.amount;
        refunded += ok;
      }
      const numbers = (await db('receipts').where({ tenant_id: ten.tenantId }).orderBy('number').select('number', 'payment_id')) as { number: number }[];
      if (numbers.length !== receiptsWanted) throw new Error(`the tenant has ${numbers.length} receipts, its payments account for ${receiptsWanted}`);
      if (numbers.some((r, i) => r.number !== i + 1)) throw new Error(`receipt numbers have a gap: ${numbers.map((r) => r.number).join(',')}`);
      const bal = Object.fromEntries((await balances(db, ten.tenantId)).map((b) => [b.account, b.balance]));
      if ((bal['provider_clearing:sandbox'] ?? 0) !== collected - refunded) throw new Error('journal disagrees with payments');
      if ((bal.fees_collected ?? 0) !== -(collected - refunded)) throw new Error('journal does not balance');
      await sealAudit(db, { tenantId: ten.tenantId });
      const v = await verifyAudit(db, ten.tenantId);
      if (!v.ok) throw new Error(`audit chain broken: ${JSON.stringify(v.broken)}`);
    }),
    { numRuns: Number(process.env.PROPERTY_RUNS ?? 25), seed: process.env.PROPERTY_SEED ? Number(process.env.PROPERTY_SEED) : undefined },
  );
  t.equal(runs >= 25 || runs === Number(process.env.PROPERTY_RUNS), true, `${runs} random histories held every property`);
});

/**
 * Property, every provider with its fault knobs: creates that time out or answer garbage (the
 * payment is `unknown`), callbacks lost, doubled or delayed, status queries that hang past the
 * adapter's timeout, a status API that lags (still says pending), refund answers lost before or
 * after the provider made the refund. Once every provider answers again and time passes, no payment or refund is left in flight, each payment is
 * credited once if and only if it succeeded, the journal holds exactly what was collected less
 * what was refunded, and each success has one receipt.
 */
type FaultProvider = 'vnpay' | 'momo' | 'zalopay' | 'paygov' | 'sandbox_api';
const FAULT_PROVIDERS: readonly FaultProvider[] = ['vnpay', 'momo', 'zalopay', 'paygov', 'sandbox_api'];
type FaultAction =
  | { a: 'pay'; i: number }
  | { a: 'flush' }
  | { a: 'janitor'; minutes: number }
  | { a: 'refund'; i: number; amount: number; lose: 'no' | 'reached' | 'not_reached' }
  | { a: 'heal'; i: number }
  | { a: 'outbox' };
const faultPayments = fc.array(
  fc.record({
    provider: fc.constantFrom(...FAULT_PROVIDERS),
    truth: fc.constantFrom<'success' | 'cancel' | 'never'>('success', 'success', 'cancel', 'never'),
    delivery: fc.constantFrom<NonNullable<FaultKnobs['delivery']>>('normal', 'lost', 'duplicate', 'delayed'),
    queryHangs: fc.boolean(),
    /** The provider's status API lags: it still calls the order pending (an answer, not a fault that heals). */
    stale: fc.boolean(),
    create: fc.constantFrom<'normal' | 'timeout' | 'unknown'>('normal', 'timeout', 'unknown'),
  }),
  { minLength: N, maxLength: N },
);
const faultAction: fc.Arbitrary<FaultAction> = fc.oneof(
  fc.record({ a: fc.constant('pay' as const), i: fc.nat(N - 1) }),
  fc.record({ a: fc.constant('flush' as const) }),
  fc.record({ a: fc.constant('janitor' as const), minutes: fc.integer({ min: 1, max: 60 }) }),
  fc.record({
    a: fc.constant('refund' as const),
    i: fc.nat(N - 1),
    amount: fc.integer({ min: 1_000, max: 70_000 }),
    lose: fc.constantFrom('no' as const, 'reached' as const, 'not_reached' as const),
  }),
  fc.record({ a: fc.constant('heal' as const), i: fc.nat(N - 1) }),
  fc.record({ a: fc.constant('outbox' as const) }),
);

interface FaultSim {
  orders: Map<string, { knobs: FaultKnobs }>;
  callbacks: CallbackSender;
  complete(k: string, r: 'success' | 'cancel'): Promise<unknown>;
}

eachDb(
  'property: every provider with its faults: nothing left in flight once providers answer, credited once, money conserved, one receipt per success',
  async (t, { db }) => {
    const env = await makeApp(db);
    t.teardown(env.close);
    const deps = env.app.deps;
    const sims = env.app.simulators!;
    t.teardown(shortAdapterTimeout(env.app, 100));
    const HANG_MS = 250;
    const runsWanted = Number(process.env.PROPERTY_FAULT_RUNS ?? 4);
    const seen = { unknown: 0, lostRefund: 0, hung: 0 };
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(faultPayments, fc.array(faultAction, { minLength: 5, maxLength: 20 }), async (specs, actions) => {
        runs++;
        const ten = await seedTenant(db, env.clock);
        const api = client(env.app, ten.keys.integration);
        const fin = client(env.app, ten.keys.finance);
        interface FaultPay {
          id: string;
          reference: string;
          spec: (typeof specs)[number];
          key: string;
          sim?: FaultSim;
          paid: boolean;
        }
        const ps: FaultPay[] = [];
        for (const spec of specs) {
          const bill = (await api.post('/v1/bills', billInput())).body as { id: string };
          if (spec.provider === 'sandbox_api')
            env.sim.queueScenario({
              create: spec.create,
              callback: spec.delivery,
              query: spec.queryHangs ? 'timeout' : spec.stale ? 'stale' : 'normal',
              delayMs: HANG_MS,
            });
          const res = await api.post('/v1/payments', { bill_id: bill.id, provider: spec.provider });
          if (res.status !== 201) throw new Error(`payment: ${res.status} ${JSON.stringify(res.body)}`);
          const payment = res.body as { id: string; reference: string; status: string; checkout: { url: string } | null };
          if (payment.status === 'unknown') seen.unknown++;
          let key = payment.reference;
          let sim: FaultSim | undefined;
          if (spec.provider === 'vnpay') {
            sims.vnpay.open(Object.fromEntries(new URL(payment.checkout!.url).searchParams));
            sim = sims.vnpay;
          } else if (spec.provider === 'zalopay') {
            key = decodeURIComponent(new URL(payment.checkout!.url).pathname.split('/').pop()!);
            sim = sims.zalopay;
          } else if (spec.provider === 'momo') sim = sims.momo;
          else if (spec.provider === 'paygov') sim = sims.paygov;
          if (sim) Object.assign(sim.orders.get(key)!.knobs, { delivery: spec.delivery, queryHangMs: spec.queryHangs ? HANG_MS : 0 });
          ps.push({ id: payment.id, reference: payment.reference, spec, key, sim, paid: false });
        }
        const pay = async (p: FaultPay) => {
          if (p.paid || p.spec.truth === 'never') return;
          p.paid = true;
          if (p.sim) await p.sim.complete(p.key, p.spec.truth);
          else if (env.sim.orders.has(p.reference)) await env.sim.complete(p.reference, p.spec.truth);
        };
        const heal = (p: FaultPay) => {
          if (p.sim) p.sim.orders.get(p.key)!.knobs.queryHangMs = 0;
          else {
            const o = env.sim.orders.get(p.reference);
            if (o?.scenario.query === 'timeout') o.scenario.query = p.spec.stale ? 'stale' : 'normal';
          }
        };
        for (const act of actions) {
          const p = 'i' in act ? ps[act.i]! : undefined;
          switch (act.a) {
            case 'pay':
              await pay(p!);
              break;
            case 'flush':
              for (const s of [sims.vnpay, sims.momo, sims.zalopay, sims.paygov]) await s.callbacks.flush();
              await env.sim.flush();
              break;
            case 'janitor':
              if (ps.some((x) => x.spec.queryHangs)) seen.hung++;
              env.clock.advance(act.minutes * 60_000);
              await runJanitor(deps);
              await runRefundChecks(deps);
              break;
            case 'refund': {
              const adapter = deps.providers.get(p!.spec.provider)!;
              const go = () => fin.post(`/v1/payments/${p!.id}/refunds`, { amount: act.amount });
              if (act.lose === 'no') await go();
              else {
                const r = await losingRefundAnswers(adapter, act.lose === 'reached', go);
                if (r.status === 201) seen.lostRefund++;
              }
              break;
            }
            case 'heal':
              heal(p!);
              break;
            case 'outbox':
              await drainOutbox(deps, deps.handlers);
              break;
          }
        }
        // Every provider answers again; payers who were going to pay have; held callbacks arrive; time passes.
        for (const p of ps) {
          heal(p);
          await pay(p);
        }
        for (const s of [sims.vnpay, sims.momo, sims.zalopay, sims.paygov]) await s.callbacks.flush();
        await env.sim.flush();
        for (let k = 0; k < 4; k++) {
          env.clock.advance(6 * 3600_000);
          await runJanitor(deps);
          await runRefundChecks(deps);
        }
        for (let k = 0; k < 3; k++) {
          await drainOutbox(deps, deps.handlers);
          env.clock.advance(120_000);
        }

        let collected = 0;
        let refunded = 0;
        const byProvider = new Map<string, number>();
        for (const p of ps) {
          const now = (await fin.get(`/v1/payments/${p.id}`)).body as { status: string; amount: number; amount_refunded: number };
          const label = `${p.spec.provider}/${p.spec.truth}/${p.spec.delivery}/${p.spec.create}${p.spec.queryHangs ? '/hangs' : ''}${p.spec.stale ? '/stale' : ''}`;
          if (['created', 'pending', 'unknown'].includes(now.status)) throw new Error(`${label}: still ${now.status} a day after every provider answered`);
          const ok = ['succeeded', 'partially_refunded', 'refunded'].includes(now.status);
          const credits = (await db('ledger_transfers').where({ payment_id: p.id, kind: 'payment.succeeded' })).length;
          if (credits !== (ok ? 1 : 0)) throw new Error(`${label}: ${now.status}, credited ${credits} times`);
          if (ok && p.spec.truth !== 'success') throw new Error(`${label}: succeeded though the payer never paid`);
          const refunds = (await fin.get(`/v1/payments/${p.id}/refunds`)).body.data as { amount: number; status: string }[];
          const stuck = refunds.filter((r) => r.status === 'pending' || r.status === 'unknown');
          if (stuck.length) throw new Error(`${label}: refunds still ${stuck.map((r) => r.status).join(',')}`);
          const back = refunds.filter((r) => r.status === 'succeeded').reduce((a, r) => a + r.amount, 0);
          if (back > now.amount || back !== now.amount_refunded)
            throw new Error(`${label}: refunded ${back} of ${now.amount} (payment says ${now.amount_refunded})`);
          const rcpts = (await db('receipts').where({ payment_id: p.id })) as { kind: string }[];
          if (rcpts.filter((r) => r.kind === 'original').length !== (ok ? 1 : 0)) throw new Error(`${label}: ${now.status} with ${rcpts.length} receipts`);
          if (rcpts.filter((r) => r.kind === 'adjustment').length !== refunds.filter((r) => r.status === 'succeeded').length)
            throw new Error(`${label}: adjustments differ from refunds`);
          if (ok) {
            collected += now.amount;
            refunded += back;
            byProvider.set(p.spec.provider, (byProvider.get(p.spec.provider) ?? 0) + now.amount - back);
          }
        }
        const bal = Object.fromEntries((await balances(db, ten.tenantId)).map((b) => [b.account, b.balance]));
        for (const prov of FAULT_PROVIDERS) {
          if ((bal[`provider_clearing:${prov}`] ?? 0) !== (byProvider.get(prov) ?? 0)) throw new Error(`journal disagrees with ${prov}'s payments`);
        }
        if ((bal.fees_collected ?? 0) !== -(collected - refunded)) throw new Error('journal does not balance');
      }),
      { numRuns: runsWanted, seed: process.env.PROPERTY_SEED ? Number(process.env.PROPERTY_SEED) : undefined },
    );
    await new Promise((r) => setTimeout(r, HANG_MS + 50)); // let hung simulator requests finish
    t.equal(runs, runsWanted, `${runs} random histories over every provider held every property`);
    t.comment(
      `faults seen: ${seen.unknown} unknown payments, ${seen.lostRefund} refunds whose answer was lost, ${seen.hung} janitor runs with hanging queries`,
    );
  },
);
