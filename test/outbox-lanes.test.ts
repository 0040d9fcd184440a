/**
 * Lanes of the outbox (issue 11, defect 7): one unit's slow webhook endpoint must not delay any
 * other unit's receipts or deliveries. Receipts (and every other in-database job) run in the work
 * lane; webhook deliveries in their own lane, at most a few at a time per endpoint, each cut off
 * after the delivery timeout.
 */
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { eachDb } from './helpers/db.js';
import { billAndPayment, client, LOOPBACK_ALLOWED, makeApp, payAt, seedTenant } from './helpers/app.js';
import { startReceiver } from './helpers/receiver.js';
import { startJobs } from '../gateway/jobs/runner.js';
import { emitEvents } from '../gateway/events/events.js';
import { completeRow, drainOutbox, outboxRow, type OutboxRow } from '../gateway/outbox/outbox.js';
import { claimDeliveries, claimWork, deliveryLeaseSeconds } from '../gateway/outbox/lanes.js';
import { WEBHOOK_BACKOFF } from '../gateway/webhooks/handlers.js';
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

eachDb("lanes: a unit whose endpoint answers after 9.5 s with 60 events queued does not delay another unit's receipt", async (t, { db }) => {
  const env = await makeApp(db, { jobIntervalMs: 50, ...LOOPBACK_ALLOWED });
  t.teardown(env.close);
  const slow = await startReceiver();
  const fast = await startReceiver();
  slow.delayMs = 9_500;
  let stopJobs: () => Promise<void> = async () => {};
  // Close the receivers first: deliveries still waiting on the slow one end now, so stopping the
  // jobs does not wait for them.
  t.teardown(async () => {
    await Promise.all([slow.close(), fast.close()]);
    await stopJobs();
  });

  const a = await seedTenant(db, env.clock);
  const b = await seedTenant(db, env.clock);
  const epA = (await client(env.app, a.keys.admin).post('/v1/webhook-endpoints', { url: slow.url, events: ['*'] })).body;
  await client(env.app, b.keys.admin).post('/v1/webhook-endpoints', { url: fast.url, events: ['payment.succeeded'] });
  // Unit B's signing certificate exists before the clock starts (its first issue is set-up, not the lane).
  await env.app.deps.certs.signer(db, (await db('tenants').where({ id: b.tenantId }).first())!);

  // Unit A: 60 events waiting for its slow endpoint.
  await db.transaction((trx) =>
    emitEvents(
      trx,
      env.clock,
      Array.from({ length: 60 }, (_, i) => ({
        tenantId: a.tenantId,
        type: 'payment.succeeded' as const,
        objectId: `pay-a-${i}`,
        data: { id: `pay-a-${i}`, object: 'payment' },
      })),
    ),
  );
  // Unit B's payment is created now: the slow deliveries are in flight when its money arrives.
  const { payment } = await billAndPayment(env.app, b.keys.integration);
  stopJobs = startJobs(env.app.deps, env.app.log);
  t.ok(await within(5_000, async () => slow.inFlight > 0), "unit A's deliveries are under way");

  await payAt(env.sim, payment, 'success');
  const receiptMs = await within(2_000, async () => (await db('receipts').where({ payment_id: payment.id }).first()) !== undefined);
  t.ok(receiptMs !== undefined, `unit B's receipt is issued within 2 s (${receiptMs === undefined ? 'not within 2 s' : `${Math.round(receiptMs)} ms`})`);
  const hookMs = await within(2_000, async () => fast.received.some((r) => JSON.parse(r.body).type === 'payment.succeeded'));
  t.ok(hookMs !== undefined, 'and its own webhook is delivered within 2 s: the slow endpoint holds no lane others need');

  t.ok(slow.maxInFlight <= 2, `unit A's endpoint never had more than 2 requests at once (had ${slow.maxInFlight})`);
  t.ok((await leasedDeliveries(db, epA.id)) <= 2, 'and no more than 2 of its rows are leased: the rest wait unclaimed');
  const [{ n }] = (await db('outbox')
    .where({ kind: 'webhook.deliver', status: 'pending' })
    .whereRaw(`payload->>'endpoint_id' = ?`, [epA.id])
    .count({ n: '*' })) as [{ n: string | number }];
  t.ok(Number(n) >= 58, `unit A's deliveries are still queued, not lost (${n} pending)`);
});

eachDb('lanes: a delivery with no answer within WEBHOOK_TIMEOUT_MS is a failed attempt, retried on the schedule with the same event id', async (t, { db }) => {
  const env = await makeApp(db, { webhookTimeoutMs: 300, ...LOOPBACK_ALLOWED });
  t.teardown(env.close);
  const rx = await startReceiver();
  t.teardown(rx.close);
  rx.delayMs = 5_000;
  const ten = await seedTenant(db, env.clock);
  const ep = (await client(env.app, ten.keys.admin).post('/v1/webhook-endpoints', { url: rx.url, events: ['*'] })).body;
  const [eventId] = await db.transaction((trx) =>
    emitEvents(trx, env.clock, [{ tenantId: ten.tenantId, type: 'payment.succeeded', objectId: 'pay-1', data: { id: 'pay-1' } }]),
  );
  t.equal(await drainOutbox(env.app.deps, env.app.deps.handlers), 2, 'the fan-out, then the delivery');
  const [attempt] = (await db('webhook_attempts').where({ endpoint_id: ep.id })) as {
    outcome: string;
    error: string;
    status_code: number | null;
    latency_ms: number;
  }[];
  t.match(attempt, { outcome: 'retry', status_code: null, error: /within 300 ms/ }, 'the timeout is recorded as a failed attempt');
  t.ok(attempt!.latency_ms >= 300 && attempt!.latency_ms < 5_000, `the request was cut off at the timeout (${attempt!.latency_ms} ms), not waited for`);
  const row = (await db('outbox').where({ kind: 'webhook.deliver' }).first()) as { status: string; attempts: number; run_at: Date; lease_token: string | null };
  t.match(row, { status: 'pending', attempts: 1, lease_token: null }, 'queued again, holding no lease');
  t.equal(row.run_at.getTime(), env.clock.now().getTime() + WEBHOOK_BACKOFF[0]! * 1000, 'after the first backoff step');
  t.equal(await drainOutbox(env.app.deps, env.app.deps.handlers), 0, 'not before');
  rx.delayMs = 0;
  env.clock.advance(WEBHOOK_BACKOFF[0]! * 1000);
  t.equal(await drainOutbox(env.app.deps, env.app.deps.handlers), 1, 'due after it');
  t.equal(rx.received.length, 1, 'delivered on the retry');
  t.equal(rx.received[0]!.headers['feegate-event-id'], eventId, 'with the event id, for the receiver to dedupe');
});

eachDb("lanes: deliveries are claimed at most N per endpoint across concurrent claims; the lanes never take each other's rows", async (t, { db }) => {
  const env = await makeApp(db, { webhookEndpointConcurrency: 2, ...LOOPBACK_ALLOWED });
  t.teardown(env.close);
  const { clock } = env;
  const deliveries = (endpoint: string, n: number) =>
    Array.from({ length: n }, () =>
      outboxRow(clock, { tenantId: null, kind: 'webhook.deliver', payload: { event_id: crypto.randomUUID(), endpoint_id: endpoint } }),
    );
  const per = (rows: OutboxRow[], ep: string) => rows.filter((r) => r.payload.endpoint_id === ep).length;
  const claim = () => claimDeliveries(db, clock, { limit: 10, perEndpoint: 2, leaseSeconds: 70 });

  // Eight claims at once (eight connections on PostgreSQL), ten rounds: never a third row of an endpoint.
  let most = 0;
  let taken = 0;
  for (let round = 0; round < 10; round++) {
    const eps = Array.from({ length: 10 }, () => crypto.randomUUID());
    await db('outbox').insert(eps.flatMap((ep) => deliveries(ep, 6)));
    const got = (await Promise.all(Array.from({ length: 8 }, () => claimDeliveries(db, clock, { limit: 5, perEndpoint: 2, leaseSeconds: 70 })))).flat();
    for (const ep of eps) most = Math.max(most, per(got, ep));
    taken += got.length;
  }
  t.equal(most, 2, 'concurrent claims never lease more than 2 rows of an endpoint');
  t.equal(taken, 200, 'and every endpoint got its 2');
  await db('outbox').where({ kind: 'webhook.deliver' }).del();

  const x = crypto.randomUUID();
  const y = crypto.randomUUID();
  await db('outbox').insert([...deliveries(x, 5), ...deliveries(y, 3), outboxRow(clock, { tenantId: null, kind: 'test.work', payload: {} })]);
  const claimed = (await Promise.all([claim(), claim(), claim(), claim()])).flat();
  t.equal(claimed.length, 4, 'four claims at once took four rows between them');
  t.same([per(claimed, x), per(claimed, y)], [2, 2], 'two of each endpoint');
  t.equal(new Set(claimed.map((r) => String(r.id))).size, 4, 'no row twice');
  t.same(await claim(), [], 'both endpoints are at their limit: nothing more, their other rows stay unleased');
  const [{ unleased }] = (await db('outbox').where({ kind: 'webhook.deliver' }).whereNull('lease_token').count({ unleased: '*' })) as [
    { unleased: string | number },
  ];
  t.equal(Number(unleased), 4, 'four wait with no lease');

  const work = await claimWork(db, clock, 50, 60);
  t.same(
    work.map((r) => r.kind),
    ['test.work'],
    'the work lane takes its own row and no delivery',
  );

  // One delivery of x ends: x may have one more in flight.
  await completeRow(
    db,
    clock,
    claimed.find((r) => r.payload.endpoint_id === x)!,
  );
  const next = await claim();
  t.same([per(next, x), per(next, y)], [1, 0], "a finished delivery frees its endpoint's slot");

  // A worker that died holds its leases until they expire; then its rows are claimed again.
  clock.advance(71_000);
  const again = await claim();
  t.same([per(again, x), per(again, y)], [2, 2], 'expired leases count no more');
  t.equal(deliveryLeaseSeconds({ leaseSeconds: 2, webhookTimeoutMs: 10_000 }), 20, "a delivery's lease outlives its timeout, whatever LEASE_SECONDS says");
});
