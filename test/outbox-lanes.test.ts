/**
 * Lanes of the outbox (issue 11, defect 7): one unit's slow webhook endpoint must not delay any
 * other unit's receipts or deliveries. Receipts (and every other in-database job) run in the work
 * lane; webhook deliveries in their own lane, at most a few at a time per endpoint, each cut off
 * after the delivery timeout.
 */
import { performance } from 'node:perf_hooks';
import { eachDb } from './helpers/db.js';
import { billAndPayment, client, makeApp, payAt, seedTenant } from './helpers/app.js';
import { startReceiver } from './helpers/receiver.js';
import { startJobs } from '../gateway/jobs/runner.js';
import { emitEvents } from '../gateway/events/events.js';
import type { Db } from '../gateway/db/knex.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Real time: waits for `ok` up to `ms`; returns the milliseconds it took, or undefined. */
async function within(ms: number, ok: () => Promise<boolean>): Promise<number | undefined> {
  const start = performance.now();
  for (;;) {
    if (await ok()) return performance.now() - start;
    if (performance.now() - start > ms) return undefined;
    await sleep(20);
  }
}

async function leasedDeliveries(db: Db, endpointId: string): Promise<number> {
  const [{ n }] = (await db('outbox')
    .where({ kind: 'webhook.deliver', status: 'pending' })
    .whereNotNull('lease_token')
    .whereRaw(`payload->>'endpoint_id' = ?`, [endpointId])
    .count({ n: '*' })) as [{ n: string | number }];
  return Number(n);
}

eachDb('lanes: a unit whose endpoint answers after 9.5 s with 60 events queued does not delay another unit\'s receipt', async (t, { db }) => {
  const env = await makeApp(db, { jobIntervalMs: 50 });
  t.teardown(env.close);
  const slow = await startReceiver();
  const fast = await startReceiver();
  slow.delayMs = 9_500;
  let stopJobs: () => Promise<void> = async () => {};
  // Close the receivers first: deliveries still waiting on the slow one end now, so stopping the
  // jobs does not wait for them.
  t.teardown(async () => { await Promise.all([slow.close(), fast.close()]); await stopJobs(); });

  const a = await seedTenant(db, env.clock);
  const b = await seedTenant(db, env.clock);
  const epA = (await client(env.app, a.keys.admin).post('/v1/webhook-endpoints', { url: slow.url, events: ['*'] })).body;
  await client(env.app, b.keys.admin).post('/v1/webhook-endpoints', { url: fast.url, events: ['payment.succeeded'] });
  // Unit B's signing certificate exists before the clock starts (its first issue is set-up, not the lane).
  await env.app.deps.certs.signer(db, (await db('tenants').where({ id: b.tenantId }).first())!);

  // Unit A: 60 events waiting for its slow endpoint.
  await db.transaction((trx) => emitEvents(trx, env.clock, Array.from({ length: 60 }, (_, i) => ({
    tenantId: a.tenantId, type: 'payment.succeeded' as const, objectId: `pay-a-${i}`, data: { id: `pay-a-${i}`, object: 'payment' },
  }))));
  // Unit B's payment is created now: the slow deliveries are in flight when its money arrives.
  const { payment } = await billAndPayment(env.app, b.keys.integration);
  stopJobs = startJobs(env.app.deps, env.app.log);
  t.ok(await within(5_000, async () => slow.inFlight > 0), 'unit A\'s deliveries are under way');

  await payAt(env.sim, payment, 'success');
  const receiptMs = await within(2_000, async () => (await db('receipts').where({ payment_id: payment.id }).first()) !== undefined);
  t.ok(receiptMs !== undefined, `unit B's receipt is issued within 2 s (${receiptMs === undefined ? 'not within 2 s' : `${Math.round(receiptMs)} ms`})`);
  const hookMs = await within(2_000, async () => fast.received.some((r) => JSON.parse(r.body).type === 'payment.succeeded'));
  t.ok(hookMs !== undefined, 'and its own webhook is delivered within 2 s: the slow endpoint holds no lane others need');

  t.ok(slow.maxInFlight <= 2, `unit A's endpoint never had more than 2 requests at once (had ${slow.maxInFlight})`);
  t.ok(await leasedDeliveries(db, epA.id) <= 2, 'and no more than 2 of its rows are leased: the rest wait unclaimed');
  const [{ n }] = (await db('outbox').where({ kind: 'webhook.deliver', status: 'pending' }).whereRaw(`payload->>'endpoint_id' = ?`, [epA.id]).count({ n: '*' })) as [{ n: string | number }];
  t.ok(Number(n) >= 58, `unit A's deliveries are still queued, not lost (${n} pending)`);
});

