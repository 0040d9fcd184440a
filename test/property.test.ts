/**
 * Property: whatever the interleaving of the payer's choice, browser returns, duplicated, delayed,
 * lost and out-of-order callbacks, janitor queries, refunds and outbox runs, every payment ends in
 * the provider's truth, is credited at most once, is never refunded above what was collected, the
 * journal agrees with the payments, and the audit chain verifies.
 */
import fc from 'fast-check';
import { eachDb } from './helpers/db.js';
import { billAndPayment, client, makeApp, seedTenant } from './helpers/app.js';
import { runJanitor } from '../gateway/jobs/janitor.js';
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

eachDb('property: any interleaving ends in the provider\'s truth, credited once, refunds bounded, books and chain valid', async (t, { db }) => {
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
      for (const p of ps) if (p.spec.truth !== 'never' && !p.paid) { p.paid = true; await env.sim.complete(p.reference, p.spec.truth as 'success'); }
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
        const want = { SUCCESS: ['succeeded', 'partially_refunded', 'refunded'], FAILED: ['failed'], CANCELLED: ['cancelled', 'expired'], PENDING: ['expired'], NONE: ['expired'] }[truth];
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
