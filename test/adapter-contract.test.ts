/**
 * The contract every payment adapter must pass, run once per adapter (add a harness for a new one):
 * checkout → the payer pays at the provider's simulator → the provider's callback is verified and
 * credits once; the provider's status query agrees; refunds, and the refund query that settles a
 * refund whose answer was lost; a cancelled payment never credits;
 * messages that do not verify are refused in the provider's format.
 */
import { eachDb } from './helpers/db.js';
import { billInput, client, losingRefundAnswers, makeApp, payAt, seedTenant, type TestApp } from './helpers/app.js';
import { balances } from '../gateway/ledger/ledger.js';
import { runJanitor } from '../gateway/jobs/janitor.js';
import { runRefundChecks } from '../gateway/jobs/refund-checks.js';
import { REFUND_FIRST_CHECK_SECONDS } from '../gateway/payments/refunds.js';

interface Harness {
  provider: string;
  /** The payer at the provider: opens the checkout, then pays or cancels. */
  pay(env: TestApp, payment: { reference: string; checkout: { url?: string } | null }, result: 'success' | 'cancel'): Promise<void>;
}

const HARNESSES: Harness[] = [
  {
    provider: 'sandbox',
    pay: async (env, p, r) => {
      await payAt(env.sim, p, r);
    },
  },
  {
    provider: 'sandbox_api',
    pay: async (env, p, r) => {
      await payAt(env.sim, p, r);
    },
  },
  {
    provider: 'vnpay',
    pay: async (env, p, r) => {
      const sim = env.app.simulators!.vnpay;
      const opened = sim.open(Object.fromEntries(new URL(p.checkout!.url!).searchParams));
      if (!opened.ok) throw new Error(`VNPay refused the checkout: ${opened.code}`);
      await sim.complete(p.reference, r);
    },
  },
  {
    provider: 'momo',
    pay: async (env, p, r) => {
      const page = await env.app.inject(new URL(p.checkout!.url!).pathname);
      if (page.statusCode !== 200) throw new Error(`MoMo page: ${page.statusCode}`);
      await env.app.simulators!.momo.complete(p.reference, r);
    },
  },
  {
    provider: 'zalopay',
    pay: async (env, p, r) => {
      const id = new URL(p.checkout!.url!).pathname.split('/').pop()!;
      await env.app.simulators!.zalopay.complete(decodeURIComponent(id), r);
    },
  },
  {
    provider: 'paygov',
    pay: async (env, p, r) => {
      const page = await env.app.inject(new URL(p.checkout!.url!).pathname);
      if (page.statusCode !== 200) throw new Error(`PayGov page: ${page.statusCode}`);
      await env.app.simulators!.paygov.complete(p.reference, r);
    },
  },
];

for (const h of HARNESSES) {
  eachDb(
    `adapter contract: ${h.provider}`,
    async (t, { db }) => {
      const env = await makeApp(db);
      t.teardown(env.close);
      const ten = await seedTenant(db, env.clock);
      const api = client(env.app, ten.keys.integration);
      const fin = client(env.app, ten.keys.finance);
      const adapter = env.app.deps.providers.get(h.provider)!;
      const ctx = await env.app.deps.providers.context(h.provider, ten.tenantId);

      const bill = (await api.post('/v1/bills', billInput())).body;
      const payment = (await api.post('/v1/payments', { bill_id: bill.id, provider: h.provider })).body;
      t.equal(payment.status, 'pending', 'checkout created');
      t.ok(payment.checkout?.url, 'with somewhere to send the payer');

      await h.pay(env, payment, 'success');
      const paid = (await fin.get(`/v1/payments/${payment.id}`)).body;
      t.equal(paid.status, 'succeeded', 'the verified callback credited it');
      t.equal((await db('ledger_transfers').where({ payment_id: payment.id, kind: 'payment.succeeded' })).length, 1, 'once');

      const status = await adapter.queryStatus(ctx, {
        reference: payment.reference,
        providerTxnId: paid.provider_transaction_id,
        amount: payment.amount,
        createdAt: new Date(payment.created_at),
      });
      t.equal(status.outcome, 'succeeded', 'the status query agrees');
      t.equal(status.amount, payment.amount, 'with the same amount');

      // A refund the provider never heard of: it says so (the janitor fails it after a grace period).
      const never = await adapter.queryRefund(ctx, {
        refundReference: 'RFNEVERMADE0000000001',
        paymentReference: payment.reference,
        amount: 8_000,
        paymentCreatedAt: new Date(payment.created_at),
        requestedAt: env.clock.now(),
        otherRefunds: 0,
      });
      t.match(never, { outcome: 'unknown', notFound: true }, 'a refund never made: the provider has no record of it');

      // A partial refund the provider makes, but whose answer is lost: unknown, then settled by the
      // janitor's refund query.
      const refund = await losingRefundAnswers(adapter, true, () => fin.post(`/v1/payments/${payment.id}/refunds`, { amount: 8_000, reason: 'contract' }));
      t.equal(refund.body.status, 'unknown', 'a refund whose answer was lost is unknown, not failed');
      t.equal((await db('ledger_transfers').where({ refund_id: refund.body.id })).length, 0, 'and nothing is booked yet');
      env.clock.advance(REFUND_FIRST_CHECK_SECONDS * 1000 + 1000);
      t.equal(await runRefundChecks(env.app.deps), 1, 'the janitor asks about it');
      const settled = (await fin.get(`/v1/payments/${payment.id}/refunds`)).body.data.find((r: { id: string }) => r.id === refund.body.id);
      t.equal(settled.status, 'succeeded', "the provider's refund query settles it");
      t.equal((await db('ledger_transfers').where({ refund_id: refund.body.id })).length, 1, 'booked once');
      t.equal(await runRefundChecks(env.app.deps), 0, 'and it is not asked about again');
      const rest = await fin.post(`/v1/payments/${payment.id}/refunds`, {});
      t.equal(rest.body.status, 'succeeded', 'and the rest');
      t.same(
        (await balances(db, ten.tenantId)).map((b) => b.balance),
        [0, 0],
        'the journal nets to zero',
      );

      const bill2 = (await api.post('/v1/bills', billInput())).body;
      const p2 = (await api.post('/v1/payments', { bill_id: bill2.id, provider: h.provider })).body;
      await h.pay(env, p2, 'cancel');
      // Some providers say nothing about a payment that did not happen (ZaloPay calls back on
      // success only): the janitor's status query learns it.
      env.clock.advance(60_000);
      await runJanitor(env.app.deps);
      const cancelled = (await fin.get(`/v1/payments/${p2.id}`)).body.status;
      t.ok(['cancelled', 'failed'].includes(cancelled), `a cancelled payment ends ${cancelled}`);
      t.equal((await db('ledger_transfers').where({ payment_id: p2.id })).length, 0, 'and credits nothing');

      const bogus = adapter.verifyNotification(ctx, {
        method: adapter.notifyMethod,
        query: { vnp_TxnRef: p2.reference },
        headers: {},
        rawBody: '{"reference":"x"}',
      });
      t.equal(bogus.ok, false, 'an unsigned message does not verify');
      for (const kind of ['ok', 'already_confirmed'] as const) {
        const a = adapter.answer(kind);
        t.ok(a.status >= 200 && a.status < 300, `answers ${kind} with a success the provider accepts (HTTP ${a.status})`);
      }
      const ok = adapter.answer('ok');
      for (const kind of ['unknown_order', 'amount_mismatch', 'bad_signature', 'malformed'] as const) {
        const a = adapter.answer(kind);
        t.ok(a.status !== ok.status || a.body !== ok.body, `a refusal (${kind}) is told apart from success`);
      }
    },
    { engines: ['pglite'] },
  );
}
