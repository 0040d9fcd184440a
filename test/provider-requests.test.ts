/**
 * A provider request that may have reached the provider is never sent again (issue 11, defect 1).
 * A gateway process (test/fixtures/provider-call-worker.ts) makes the call against this test's
 * simulators over real HTTP and is SIGKILLed the moment the provider's answer arrives, before it is
 * written. The client then retries with the same Idempotency-Key (the takeover after the key's lock)
 * and the janitor runs: the provider's books show exactly one refund (or one order), the provider was
 * called once, and what it did is booked once. PostgreSQL only: two processes share the database.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Test } from 'tap';
import { eachDb } from './helpers/db.js';
import { billInput, client, makeApp, payAt, seedTenant, TEST_DEV_CA_DIR, TEST_MASTER_KEY, type TestApp } from './helpers/app.js';
import { runRefundChecks, REFUND_NOT_FOUND_GRACE_MS } from '../gateway/jobs/refund-checks.js';
import { runJanitor, EXPIRY_GRACE_MS } from '../gateway/jobs/janitor.js';
import { REFUND_FIRST_CHECK_SECONDS } from '../gateway/payments/refunds.js';
import type { Db } from '../gateway/db/knex.js';

const root = path.resolve(import.meta.dirname, '..');

/** Runs one API call in a child gateway that dies right after the answer of a request to `killAfter`. */
async function callAndDie(t: Test, env: TestApp, url: string, killAfter: RegExp, call: { path: string; body: unknown; key: string; idempotencyKey: string }) {
  const address = await env.app.listen({ port: 0, host: '127.0.0.1' });
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/provider-call-worker.ts', url, address], {
    cwd: root,
    env: {
      ...process.env,
      FEEGATE_MASTER_KEY: TEST_MASTER_KEY,
      FEEGATE_DEV_CA_DIR: TEST_DEV_CA_DIR,
      FEEGATE_MODE: 'development',
      CLOCK: env.clock.now().toISOString(),
      KILL_AFTER: killAfter.source,
      CALL: JSON.stringify(call),
    },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const signal = await new Promise<string | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
  t.equal(signal, 'SIGKILL', `the process died between the provider's answer and its booking${signal ? '' : `: ${out}`}`);
}

/** Counts the calls a simulator method receives (and still lets each through). */
function countCalls<T extends object, K extends keyof T>(obj: T, method: K, which: (arg: Record<string, unknown>) => boolean = () => true) {
  const real = obj[method] as (...a: unknown[]) => unknown;
  let n = 0;
  (obj as Record<K, unknown>)[method] = (...a: unknown[]) => {
    if (which((a[0] ?? {}) as Record<string, unknown>)) n++;
    return real.apply(obj, a);
  };
  return () => n;
}

async function bookedRefunds(db: Db, paymentId: string) {
  const refunds = (await db('refunds').where({ payment_id: paymentId })) as { id: string; status: string; amount: string }[];
  const [{ n }] = (await db('ledger_transfers').where({ payment_id: paymentId, kind: 'refund.succeeded' }).count({ n: '*' })) as [{ n: string }];
  const p = (await db('payments').where({ id: paymentId }).first()) as { status: string; amount_refunded: string };
  return { refunds, ledger: Number(n), payment: p };
}

const REFUND = 20_000;

/** A paid payment at `provider`, through the test's gateway and simulators. */
async function paid(env: TestApp, keys: Record<string, string>, provider: 'sandbox' | 'vnpay' | 'momo') {
  const api = client(env.app, keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  const payment = (await api.post('/v1/payments', { bill_id: bill.id, provider })).body;
  const sims = env.app.simulators!;
  if (provider === 'sandbox') await payAt(env.sim, payment);
  if (provider === 'vnpay') {
    sims.vnpay.open(Object.fromEntries(new URL(payment.checkout.url).searchParams));
    await sims.vnpay.complete(payment.reference, 'success');
  }
  if (provider === 'momo') await sims.momo.complete(payment.reference, 'success');
  return payment as { id: string; reference: string };
}

const refundCases = [
  {
    provider: 'vnpay' as const,
    killAfter: /\/merchant_webapi\/api\/transaction$/,
    calls: (env: TestApp) => countCalls(env.app.simulators!.vnpay, 'transaction', (b) => b.vnp_Command === 'refund'),
    books: (env: TestApp, ref: string) => (env.app.simulators!.vnpay.orders.get(ref)!.refunds ?? []).map((r) => r.amount),
  },
  {
    provider: 'momo' as const,
    killAfter: /\/v2\/gateway\/api\/refund$/,
    calls: (env: TestApp) => countCalls(env.app.simulators!.momo, 'refund'),
    books: (env: TestApp, ref: string) => env.app.simulators!.momo.orders.get(ref)!.refunds.map((r) => r.amount),
  },
  {
    provider: 'sandbox' as const,
    killAfter: /\/sandbox\/api\/refund$/,
    calls: (env: TestApp) => countCalls(env.sim, 'refund'),
    books: (env: TestApp, ref: string) => env.sim.orders.get(ref)!.refunds.map((r) => r.amount),
  },
];

for (const c of refundCases) {
  eachDb(
    `provider requests: ${c.provider} refund, process killed after the provider answered, retried with the same key: one refund`,
    async (t, { db, url }) => {
      const env = await makeApp(db);
      t.teardown(env.close);
      const ten = await seedTenant(db, env.clock);
      const payment = await paid(env, ten.keys, c.provider);
      const calls = c.calls(env);
      const call = {
        path: `/v1/payments/${payment.id}/refunds`,
        body: { amount: REFUND, reason: 'nộp thừa' },
        key: ten.keys.finance,
        idempotencyKey: `refund-${payment.id}`,
      };

      await callAndDie(t, env, url!, c.killAfter, call);
      t.same(c.books(env, payment.reference), [REFUND], 'the provider made the refund');
      const before = await bookedRefunds(db, payment.id);
      t.same(
        before.refunds.map((r) => r.status),
        ['pending'],
        'its answer was never written',
      );

      // The client retries after the key's lock (60 s); later the janitor's refund check runs.
      env.clock.advance((env.app.deps.config.idempotencyLockSeconds + 1) * 1000);
      const retry = await client(env.app, ten.keys.finance).post(call.path, call.body, { 'idempotency-key': call.idempotencyKey });
      t.equal(retry.status, 201);
      t.equal(retry.body.id, before.refunds[0]!.id, 'the same refund');
      env.clock.advance(REFUND_FIRST_CHECK_SECONDS * 1000 + REFUND_NOT_FOUND_GRACE_MS);
      await runRefundChecks(env.app.deps);

      t.equal(calls(), 1, 'the provider was called once: neither the retry nor the janitor sent it again');
      t.same(c.books(env, payment.reference), [REFUND], "the provider's books show exactly one refund");
      const after = await bookedRefunds(db, payment.id);
      t.same(
        after.refunds.map((r) => r.status),
        ['succeeded'],
        'booked from the answer to a query: succeeded, not failed',
      );
      t.equal(after.ledger, 1, 'journalled once');
      t.equal(Number(after.payment.amount_refunded), REFUND);
      t.equal(after.payment.status, 'partially_refunded');
      const req = await db('provider_requests').where({ refund_id: after.refunds[0]!.id }).first();
      t.match(req, {
        kind: 'refund',
        request_id: (await db('refunds').where({ id: after.refunds[0]!.id }).first()).reference,
        state: 'answered',
        outcome: 'succeeded',
      });
      t.equal(req.answer.source, 'query', 'its answer came from asking');
    },
    { engines: ['postgres'] },
  );
}

const createCases = [
  {
    provider: 'sandbox_api' as const,
    killAfter: /\/sandbox\/api\/orders$/,
    calls: (env: TestApp) => countCalls(env.sim, 'createOrder'),
    orders: (env: TestApp) => env.sim.orders,
  },
  {
    provider: 'momo' as const,
    killAfter: /\/v2\/gateway\/api\/create$/,
    calls: (env: TestApp) => countCalls(env.app.simulators!.momo, 'create'),
    orders: (env: TestApp) => env.app.simulators!.momo.orders,
  },
];

for (const c of createCases) {
  eachDb(
    `provider requests: ${c.provider} checkout create, process killed after the provider answered, resumed with the same key: one order, asked about`,
    async (t, { db, url }) => {
      const env = await makeApp(db);
      t.teardown(env.close);
      const ten = await seedTenant(db, env.clock);
      const api = client(env.app, ten.keys.integration);
      const bill = (await api.post('/v1/bills', billInput())).body;
      const calls = c.calls(env);
      const call = { path: '/v1/payments', body: { bill_id: bill.id, provider: c.provider }, key: ten.keys.integration, idempotencyKey: `pay-${bill.id}` };

      await callAndDie(t, env, url!, c.killAfter, call);
      const p0 = (await db('payments').where({ bill_id: bill.id }).first()) as { id: string; reference: string; status: string };
      t.equal(p0.status, 'created', 'its answer was never written');
      t.ok(c.orders(env).has(p0.reference), 'the provider has the order');

      env.clock.advance((env.app.deps.config.idempotencyLockSeconds + 1) * 1000);
      const retry = await api.post(call.path, call.body, { 'idempotency-key': call.idempotencyKey });
      t.equal(retry.status, 201);
      t.equal(retry.body.id, p0.id, 'the same payment');
      t.equal(calls(), 1, 'the create was sent once, not again on resume');
      t.match(
        retry.body,
        { status: 'failed', failure: { code: 'checkout_lost' } },
        'asked: the provider holds the order, whose pay URL nobody ever saw: the payment fails',
      );
      const req = await db('provider_requests').where({ payment_id: p0.id, kind: 'checkout_create' }).first();
      t.match(req, { request_id: p0.reference, attempt: 1, state: 'answered', outcome: 'pending' });
      t.equal(req.answer.source, 'query');
      t.equal((await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' })).status, 201, 'the bill takes a new payment');

      // Should the order be paid at the provider anyway, its callback is believed: a late success, credited once.
      if (c.provider === 'momo') await env.app.simulators!.momo.complete(p0.reference, 'success');
      else await env.sim.complete(p0.reference, 'success');
      t.equal((await db('payments').where({ id: p0.id }).first()).status, 'succeeded', 'paid once, booked once');
      t.equal([...c.orders(env).keys()].filter((k) => k === p0.reference).length, 1, 'one order at the provider');
      env.clock.advance(3600_000 + EXPIRY_GRACE_MS);
      await runJanitor(env.app.deps);
      t.equal(calls(), 1, 'nor by the janitor');
    },
    { engines: ['postgres'] },
  );
}

/**
 * The simulators are as unkind as the providers' documentation (defect 9): a refund sent again with
 * the same id refunds nothing (MoMo 40 "Duplicated requestId", VNPay 94 "duplicate request", the
 * sandbox 06 duplicate), and ZaloPay answers a repeated m_refund_id, its idempotency key, with the
 * first answer. A duplicate is never mapped to a failure: the provider has the request; ask.
 */
eachDb(
  'provider requests: a refund sent twice with the same id is refunded once, and the repeat is never a failure',
  async (t, { db }) => {
    const env = await makeApp(db);
    t.teardown(env.close);
    const ten = await seedTenant(db, env.clock);
    const sims = env.app.simulators!;
    const expected = {
      momo: { outcome: 'unknown', code: '40' },
      vnpay: { outcome: 'pending', code: '94' },
      sandbox: { outcome: 'unknown', code: '06' },
      zalopay: { outcome: 'succeeded', code: '1' },
    } as const;
    for (const provider of ['momo', 'vnpay', 'sandbox', 'zalopay'] as const) {
      let ref: string;
      if (provider === 'zalopay') {
        const bill = (await client(env.app, ten.keys.integration).post('/v1/bills', billInput())).body;
        ref = (await client(env.app, ten.keys.integration).post('/v1/payments', { bill_id: bill.id, provider })).body.reference;
        await sims.zalopay.complete(
          [...sims.zalopay.orders.keys()].find((id) => id.endsWith(ref))!,
          'success',
        );
      } else {
        ref = (await paid(env, ten.keys, provider)).reference;
      }
      const p = (await db('payments').where({ reference: ref }).first()) as { provider_txn_id: string; succeeded_at: Date; created_at: Date };
      const adapter = env.app.deps.providers.get(provider)!;
      const ctx = await env.app.deps.providers.context(provider, ten.tenantId);
      const req = {
        refundReference: `RF${provider.toUpperCase()}0001`,
        paymentReference: ref,
        providerTxnId: p.provider_txn_id,
        amount: REFUND,
        paymentAmount: 58_000,
        reason: 'test',
        paidAt: p.succeeded_at,
        requestedAt: p.created_at,
      };
      const first = await adapter.refund(ctx, req);
      const again = await adapter.refund(ctx, req);
      t.equal(first.outcome, 'succeeded', `${provider}: the first is made`);
      t.match(again, expected[provider], `${provider}: the repeat is answered as the docs say`);
      t.not(again.outcome, 'failed', `${provider}: a duplicate is never a failure`);
      const books =
        provider === 'momo'
          ? sims.momo.orders.get(ref)!.refunds.map((r) => r.amount)
          : provider === 'vnpay'
            ? (sims.vnpay.orders.get(ref)!.refunds ?? []).map((r) => r.amount)
            : provider === 'sandbox'
              ? env.sim.orders.get(ref)!.refunds.map((r) => r.amount)
              : [...sims.zalopay.refunds.values()].map((r) => r.amount);
      t.same(books, [REFUND], `${provider}: one refund in the provider's books`);
    }
  },
  { engines: ['pglite'] },
);

/** The sandbox's API create is not idempotent either (like MoMo's 41): a repeat is a duplicate, asked about, never a failure. */
eachDb(
  'provider requests: a checkout create sent twice is one order, and the repeat is never a failure',
  async (t, { db }) => {
    const env = await makeApp(db);
    t.teardown(env.close);
    for (const provider of ['sandbox_api', 'momo'] as const) {
      const adapter = env.app.deps.providers.get(provider)!;
      const ctx = await env.app.deps.providers.context(provider, null);
      const req = {
        reference: `FG${provider.replace('_', '').toUpperCase()}0001`,
        amount: 58_000,
        currency: 'VND' as const,
        description: 'Le phi',
        returnUrl: 'http://feegate.test/v1/return/x',
        notifyUrl: 'http://feegate.test/v1/notify/x',
        createdAt: env.clock.now(),
        expiresAt: new Date(env.clock.now().getTime() + 900_000),
      };
      t.equal((await adapter.createCheckout(ctx, req)).outcome, 'pending', `${provider}: created`);
      t.equal((await adapter.createCheckout(ctx, req)).outcome, 'unknown', `${provider}: the repeat is a duplicate: unknown, not failed`);
    }
    t.ok(env.sim.orders.has('FGSANDBOXAPI0001') && env.app.simulators!.momo.orders.has('FGMOMO0001'), 'one order each');
  },
  { engines: ['pglite'] },
);

/**
 * A refund whose process died after writing it and before sending it (request still `prepared`):
 * a retry with the key sends it, once; if instead the janitor found it never made (15 min) and
 * closed it, a later retry sends nothing.
 */
eachDb('provider requests: a refund never sent is sent once on resume, or closed by the janitor and then never sent', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const { fingerprint, fingerprintKey } = await import('../gateway/http/idempotency.js');
  const { parseKey } = await import('../gateway/secrets/secret-box.js');
  const serverKey = fingerprintKey(parseKey(env.app.deps.config.masterKey!));
  const calls = countCalls(env.sim, 'refund');
  /** What createRefund's first transaction leaves when the process dies right after it. */
  const unsent = async (key: string) => {
    const payment = await paid(env, ten.keys, 'sandbox');
    const now = env.clock.now();
    const [r] = await db('refunds')
      .insert({
        tenant_id: ten.tenantId,
        payment_id: payment.id,
        reference: `RF${key.toUpperCase()}`,
        amount: REFUND,
        status: 'pending',
        reason: '',
        created_at: now,
        updated_at: now,
        next_check_at: new Date(now.getTime() + REFUND_FIRST_CHECK_SECONDS * 1000),
      })
      .returning('*');
    await db('provider_requests').insert({
      tenant_id: ten.tenantId,
      provider: 'sandbox',
      kind: 'refund',
      request_id: r.reference,
      payment_id: payment.id,
      refund_id: r.id,
      state: 'prepared',
      created_at: now,
      updated_at: now,
    });
    const path = `/v1/payments/${payment.id}/refunds`;
    const body = { amount: REFUND };
    await db('idempotency_keys').insert({
      tenant_id: ten.tenantId,
      key,
      method: 'POST',
      path,
      fingerprint: fingerprint(serverKey, 'POST', path, body),
      status: 'in_flight',
      locked_until: new Date(now.getTime() + 60_000),
      recovery: JSON.stringify({ refund_id: r.id }),
      created_at: now,
    });
    return { payment, refund: r, retry: () => client(env.app, ten.keys.finance).post(path, body, { 'idempotency-key': key }) };
  };

  const a = await unsent('unsent-a');
  env.clock.advance(61_000);
  const resumed = await a.retry();
  t.match(resumed.body, { id: a.refund.id, status: 'succeeded' }, 'a request never sent is sent on resume');
  t.equal(calls(), 1);
  t.same(
    env.sim.orders.get(a.payment.reference)!.refunds.map((r) => r.amount),
    [REFUND],
  );
  t.match(await db('provider_requests').where({ refund_id: a.refund.id }).first(), { state: 'answered', outcome: 'succeeded' });

  const b = await unsent('unsent-b');
  env.clock.advance(REFUND_NOT_FOUND_GRACE_MS + 1000);
  await runRefundChecks(env.app.deps);
  t.equal((await db('refunds').where({ id: b.refund.id }).first()).status, 'failed', 'the janitor: never made, 15 min on');
  t.match(await db('provider_requests').where({ refund_id: b.refund.id }).first(), { state: 'answered', outcome: 'not_sent' });
  const late = await b.retry();
  t.match(late.body, { id: b.refund.id, status: 'failed' }, 'a retry after that answers the refund as it stands');
  t.equal(calls(), 1, 'and sends nothing');
  t.same(env.sim.orders.get(b.payment.reference)!.refunds, [], "nothing in the provider's books");
});
