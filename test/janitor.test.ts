import { eachDb } from './helpers/db.js';
import { billAndPayment, billInput, client, makeApp, payAt, seedTenant, shortAdapterTimeout } from './helpers/app.js';
import { runJanitor, EXPIRY_GRACE_MS } from '../gateway/jobs/janitor.js';
import { sandboxApiAdapter } from '../adapters/sandbox/adapter.js';

const MIN = 60_000;

eachDb('janitor: a lost callback is recovered by querying the provider, on schedule', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.finance);
  env.sim.queueScenario({ callback: 'lost' });
  const { payment } = await billAndPayment(env.app, ten.keys.integration);
  await payAt(env.sim, payment, 'success');
  t.equal((await api.get(`/v1/payments/${payment.id}`)).body.status, 'pending', 'the callback never came');
  env.clock.advance(MIN - 1000);
  t.equal(await runJanitor(env.app.deps), 0, 'not due before 1 min');
  env.clock.advance(1000);
  t.equal(await runJanitor(env.app.deps), 1);
  const p = (await api.get(`/v1/payments/${payment.id}`)).body;
  t.equal(p.status, 'succeeded', "the provider's answer was applied");
  const audit = (await db('audit_log').where({ entity_id: payment.id, action: 'payment.succeeded' }).first()) as { actor: string; data: { source: string } };
  t.equal(audit.actor, 'janitor:sandbox');
  t.equal(audit.data.source, 'query');
  // A late duplicate of the callback changes nothing.
  await env.sim.flush();
  t.equal((await db('ledger_transfers').where({ payment_id: payment.id })).length, 1, 'credited once');
});

eachDb('janitor: a provider may set its own delay before the first check', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  env.app.deps.providers.register({ ...sandboxApiAdapter, id: 'sandbox_slow', firstStatusCheckSeconds: 600 });
  const { payment } = await billAndPayment(env.app, ten.keys.integration, {}, 'sandbox_slow');
  const row = (await db('payments').where({ id: payment.id }).first()) as { next_check_at: Date; created_at: Date };
  t.equal(row.next_check_at.getTime() - row.created_at.getTime(), 600_000);
  env.clock.advance(599_000);
  t.equal(await runJanitor(env.app.deps), 0, 'not after the default minute');
  env.clock.advance(1_000);
  t.equal(await runJanitor(env.app.deps), 1, "after the provider's 10 minutes");
});

eachDb('janitor: unknown stays unknown until the provider answers; timeouts never fail a payment', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.finance);
  t.teardown(shortAdapterTimeout(env.app, 100));
  env.sim.queueScenario({ create: 'timeout', query: 'timeout', callback: 'lost', delayMs: 300 });
  const { payment } = await billAndPayment(env.app, ten.keys.integration, {}, 'sandbox_api');
  t.equal(payment.status, 'unknown');
  const order = env.sim.orders.get(payment.reference)!;
  // The payer pays at once; we never hear of it: the callback is lost and queries time out.
  await env.sim.complete(payment.reference, 'success');
  // Checks follow the schedule: 1 min, then 5 min each; the provider never answers in time.
  const expected = [1, 5, 5, 5, 5, 5, 60];
  for (const minutes of expected) {
    env.clock.advance(minutes * MIN - 1000);
    t.equal(await runJanitor(env.app.deps), 0, `not due before ${minutes} min`);
    env.clock.advance(1000);
    t.equal(await runJanitor(env.app.deps), 1, `checked after ${minutes} min`);
    t.equal((await api.get(`/v1/payments/${payment.id}`)).body.status, 'unknown', 'still unknown, never failed');
  }
  t.ok(env.clock.now().getTime() > new Date(payment.expires_at).getTime() + EXPIRY_GRACE_MS, 'even past the deadline');
  // Garbage answers are unknown too.
  order.scenario.query = 'unknown';
  env.clock.advance(24 * 60 * MIN);
  await runJanitor(env.app.deps);
  t.equal((await api.get(`/v1/payments/${payment.id}`)).body.status, 'unknown');
  // The provider finally answers: the payer did pay.
  order.scenario.query = 'normal';
  env.clock.advance(24 * 60 * MIN);
  await runJanitor(env.app.deps);
  t.equal((await api.get(`/v1/payments/${payment.id}`)).body.status, 'succeeded');
});

eachDb('janitor: abandoned checkouts expire at the deadline; a late success still counts', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.finance);
  const pastDeadline = (p: { expires_at: string }) => env.clock.set(new Date(new Date(p.expires_at).getTime() + EXPIRY_GRACE_MS + 1000));

  // The payer never opened the checkout: the provider does not know the order.
  const { payment, bill } = await billAndPayment(env.app, ten.keys.integration);
  env.clock.advance(MIN);
  await runJanitor(env.app.deps);
  t.equal((await api.get(`/v1/payments/${payment.id}`)).body.status, 'pending', 'not before the deadline');
  pastDeadline(payment);
  await db('payments').where({ id: payment.id }).update({ next_check_at: env.clock.now() });
  await runJanitor(env.app.deps);
  const expired = (await api.get(`/v1/payments/${payment.id}`)).body;
  t.equal(expired.status, 'expired');
  t.match(expired.failure, { code: 'checkout_expired', message: /never reached/ });
  t.equal((await api.get(`/v1/bills/${bill.id}`)).body.status, 'open', 'the bill can be paid again');
  const events = (await api.get(`/v1/events?object_id=${payment.id}`)).body.data;
  t.same(
    events.map((e: { type: string }) => e.type),
    ['payment.expired'],
  );

  // The payer pays just in time, but the callback is held up and the provider's status API lags
  // (still says pending): past the deadline the janitor expires the payment …
  const second = (await client(env.app, ten.keys.integration).post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' })).body;
  env.sim.queueScenario({ callback: 'delayed', query: 'stale' });
  env.sim.openUrl(second.checkout.url);
  await env.sim.complete(second.reference, 'success');
  pastDeadline(second);
  await db('payments').where({ id: second.id }).update({ next_check_at: env.clock.now() });
  await runJanitor(env.app.deps);
  t.equal((await api.get(`/v1/payments/${second.id}`)).body.status, 'expired');
  // … then the provider's callback arrives, and its status API has caught up: the money is real,
  // the payment succeeds late (a success for an expired payment is booked on the query's word).
  env.sim.orders.get(second.reference)!.scenario.query = 'normal';
  await env.sim.flush(second.reference);
  const late = (await api.get(`/v1/payments/${second.id}`)).body;
  t.equal(late.status, 'succeeded');
  const audit = (await db('audit_log').where({ entity_id: second.id, action: 'payment.succeeded' }).first()) as { data: Record<string, unknown> };
  t.equal(audit.data.late_success, true, 'recorded as a late success');
  t.equal((await api.get(`/v1/bills/${bill.id}`)).body.status, 'paid');
});

eachDb('janitor: open bills past their due date expire, not those with a payment in flight', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const due = '2026-03-12';
  const idle = (await api.post('/v1/bills', billInput({ due_date: due }))).body;
  const busy = (await api.post('/v1/bills', billInput({ due_date: due }))).body;
  // A payment whose outcome we cannot learn (the provider's status API times out) stays in flight.
  t.teardown(shortAdapterTimeout(env.app, 100));
  env.sim.queueScenario({ create: 'unknown', query: 'timeout', delayMs: 300 });
  await api.post('/v1/payments', { bill_id: busy.id, provider: 'sandbox_api' });
  env.clock.set('2026-03-12T16:59:00Z'); // 23:59 in Vietnam on the due date
  await runJanitor(env.app.deps);
  t.equal((await api.get(`/v1/bills/${idle.id}`)).body.status, 'open', 'still due today in Vietnam');
  env.clock.set('2026-03-12T17:00:01Z'); // past midnight in Vietnam
  await runJanitor(env.app.deps);
  t.equal((await api.get(`/v1/bills/${idle.id}`)).body.status, 'expired');
  t.equal((await api.get(`/v1/bills/${busy.id}`)).body.status, 'open', 'a bill with a payment in flight waits for it');
  const pay = await api.post('/v1/payments', { bill_id: idle.id, provider: 'sandbox' });
  t.equal(pay.body.error.code, 'FEEGATE_ERR_BILL_NOT_PAYABLE');
});

eachDb('janitor: an unknown payment the provider still calls pending past the deadline becomes pending, then expires on the next answer', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.finance);
  t.teardown(shortAdapterTimeout(env.app, 100));
  // The create timed out (the order exists at the provider); the payer never pays; the provider's
  // status API keeps calling the order pending.
  env.sim.queueScenario({ create: 'timeout', query: 'stale', delayMs: 300 });
  const { payment, bill } = await billAndPayment(env.app, ten.keys.integration, {}, 'sandbox_api');
  t.equal(payment.status, 'unknown');
  env.clock.set(new Date(new Date(payment.expires_at).getTime() + EXPIRY_GRACE_MS + 1000));
  await db('payments').where({ id: payment.id }).update({ next_check_at: env.clock.now(), check_count: 7 });
  await runJanitor(env.app.deps);
  const first = (await api.get(`/v1/payments/${payment.id}`)).body;
  t.equal(first.status, 'pending', "the provider's word: the order exists and is open");
  const row = (await db('payments').where({ id: payment.id }).first()) as { next_check_at: Date };
  t.equal(row.next_check_at.getTime() - env.clock.now().getTime(), MIN, 'asked again soon, not on the daily step');
  t.equal(await runJanitor(env.app.deps), 0, 'not expired on the same answer');
  env.clock.advance(MIN);
  await runJanitor(env.app.deps);
  const last = (await api.get(`/v1/payments/${payment.id}`)).body;
  t.equal(last.status, 'expired', 'asked again after the deadline: still pending, so abandoned');
  t.match(last.failure, { code: 'checkout_expired' });
  t.equal((await api.get(`/v1/bills/${bill.id}`)).body.status, 'open', 'the bill is no longer blocked');
  const moves = (await db('audit_log').where({ entity_id: payment.id }).orderBy('id').select('data')) as {
    data: { from?: string; to?: string; source?: string };
  }[];
  t.same(
    moves.filter((m) => m.data.to).map((m) => `${m.data.from}→${m.data.to}:${m.data.source}`),
    ['created→unknown:api', 'unknown→pending:query', 'pending→expired:janitor'],
  );
});
