import { eachDb } from './helpers/db.js';
import { billAndPayment, client, LOOPBACK_ALLOWED, makeApp, payAt, seedTenant } from './helpers/app.js';
import { startReceiver } from './helpers/receiver.js';
import { claimBatch, drainOutbox } from '../gateway/outbox/outbox.js';
import { verifySignature } from '../gateway/webhooks/signature.js';
import { WEBHOOK_BACKOFF, fanoutHandler } from '../gateway/webhooks/handlers.js';
import { runCli } from '../gateway/cli/main.js';

// The receivers listen on loopback: the operator allows it (FEEGATE_ALLOWED_PRIVATE_HOSTS), or every delivery is refused.

eachDb('webhooks: a payment produces signed events, delivered and logged', async (t, { db }) => {
  const env = await makeApp(db, LOOPBACK_ALLOWED);
  t.teardown(env.close);
  const rx = await startReceiver();
  t.teardown(rx.close);
  const ten = await seedTenant(db, env.clock);
  const admin = client(env.app, ten.keys.admin);
  const ep = await admin.post('/v1/webhook-endpoints', { url: rx.url, events: ['payment.succeeded', 'bill.paid'] });
  t.equal(ep.status, 201);
  t.match(ep.body.secret, /^whsec_/);
  const listed = await admin.get('/v1/webhook-endpoints');
  t.notOk(JSON.stringify(listed.body).includes(ep.body.secret), 'the secret is shown once, never listed');
  const stored = (await db('webhook_endpoints').where({ id: ep.body.id }).first()) as { secret_enc: string };
  t.notOk(stored.secret_enc.includes(ep.body.secret.slice(6)), 'stored encrypted');

  const { payment, bill } = await billAndPayment(env.app, ten.keys.integration);
  await payAt(env.sim, payment, 'success');
  t.equal(
    await drainOutbox(env.app.deps, env.app.deps.handlers),
    6,
    'two fan-outs and the receipt, then the two deliveries and the fan-out of receipt.issued (no endpoint wants it)',
  );
  t.equal(await drainOutbox(env.app.deps, env.app.deps.handlers), 0, 'nothing left');
  t.equal(rx.received.length, 2);
  const types = rx.received.map((r) => JSON.parse(r.body).type).sort();
  t.same(types, ['bill.paid', 'payment.succeeded']);
  const now = Math.floor(env.clock.now().getTime() / 1000);
  for (const r of rx.received) {
    const sig = String(r.headers['feegate-signature']);
    t.ok(verifySignature(ep.body.secret, r.body, sig, now), 'the signature verifies with the secret');
    t.notOk(verifySignature(ep.body.secret, r.body.replace('"id"', '"Id"'), sig, now), 'and not over other bytes');
    t.notOk(verifySignature(ep.body.secret, r.body, sig, now + 3600), 'and not an hour later (replay)');
    t.equal(r.headers['feegate-event-id'], JSON.parse(r.body).id);
  }
  const succeeded = JSON.parse(rx.received.find((r) => JSON.parse(r.body).type === 'payment.succeeded')!.body);
  t.equal(succeeded.data.object.id, payment.id);
  t.equal(succeeded.data.object.status, 'succeeded');
  const paid = JSON.parse(rx.received.find((r) => JSON.parse(r.body).type === 'bill.paid')!.body);
  t.equal(paid.data.object.id, bill.id);

  const fin = client(env.app, ten.keys.finance);
  const events = await fin.get('/v1/events?type=payment.succeeded');
  t.equal(events.body.data.length, 1);
  const attempts = await fin.get(`/v1/events/${events.body.data[0].id}/attempts`);
  t.match(attempts.body.data, [{ endpoint_id: ep.body.id, attempt: 1, status_code: 200, outcome: 'delivered', response_excerpt: 'answered 200' }]);

  // Resend delivers again, with the same event id.
  t.same((await admin.post(`/v1/events/${events.body.data[0].id}/resend`)).body, { queued: 1 });
  await drainOutbox(env.app.deps, env.app.deps.handlers);
  t.equal(rx.received.length, 3);
  t.equal(rx.received[2]!.headers['feegate-event-id'], events.body.data[0].id);
});

eachDb('webhooks: a receiver down for hours gets the event later; 410 or removal stops retries', async (t, { db }) => {
  const env = await makeApp(db, LOOPBACK_ALLOWED);
  t.teardown(env.close);
  const rx = await startReceiver();
  t.teardown(rx.close);
  const ten = await seedTenant(db, env.clock);
  const admin = client(env.app, ten.keys.admin);
  await admin.post('/v1/webhook-endpoints', { url: rx.url, events: ['payment.succeeded'] });
  const drain = () => drainOutbox(env.app.deps, env.app.deps.handlers);

  rx.answer = 'down';
  const { payment } = await billAndPayment(env.app, ten.keys.integration);
  await payAt(env.sim, payment, 'success');
  await drain();
  const event = (await client(env.app, ten.keys.finance).get('/v1/events?type=payment.succeeded')).body.data[0];
  // Each failed attempt waits longer: the schedule is followed, hour after hour.
  for (let i = 0; i < 6; i++) {
    env.clock.advance(WEBHOOK_BACKOFF[i]! * 1000 - 1000);
    t.equal(await drain(), 0, `nothing is due just before retry ${i + 1}`);
    env.clock.advance(1000);
    t.equal(await drain(), 1, `retry ${i + 1} runs on schedule`);
  }
  const hoursDown = WEBHOOK_BACKOFF.slice(0, 6).reduce((a, b) => a + b, 0) / 3600;
  t.ok(hoursDown > 7, `the receiver has been down ${hoursDown.toFixed(1)} h`);
  rx.answer = 200;
  env.clock.advance(WEBHOOK_BACKOFF[6]! * 1000);
  t.equal(await drain(), 1);
  t.equal(rx.received.length, 1, 'delivered once it came back');
  const attempts = (await client(env.app, ten.keys.finance).get(`/v1/events/${event.id}/attempts`)).body.data;
  t.equal(attempts.length, 8);
  t.same(
    attempts.map((a: { outcome: string }) => a.outcome),
    [...Array(7).fill('retry'), 'delivered'],
  );
  t.match(attempts[0].error, /failed|socket|closed|terminated/i, 'the error of a dead connection is logged');

  // 410 Gone: the endpoint is disabled and gets nothing more.
  rx.answer = 410;
  const p2 = (await billAndPayment(env.app, ten.keys.integration)).payment;
  await payAt(env.sim, p2, 'success');
  await drain();
  const eps = (await admin.get('/v1/webhook-endpoints')).body.data;
  t.match(eps[0], { status: 'disabled', disabled_reason: /410/ });
  rx.answer = 200;
  const p3 = (await billAndPayment(env.app, ten.keys.integration)).payment;
  await payAt(env.sim, p3, 'success');
  env.clock.advance(48 * 3600_000);
  await drain();
  t.equal(rx.received.length, 2, 'one 410 answer, then nothing');

  // A removed endpoint: its queued retries are cancelled.
  const ep2 = (await admin.post('/v1/webhook-endpoints', { url: rx.url, events: ['*'] })).body;
  rx.answer = 500;
  const p4 = (await billAndPayment(env.app, ten.keys.integration)).payment;
  await payAt(env.sim, p4, 'success');
  await drain();
  const before = rx.received.length;
  t.equal((await admin.post(`/v1/webhook-endpoints/${ep2.id}/remove`)).status, 200);
  env.clock.advance(48 * 3600_000);
  await drain();
  t.equal(rx.received.length, before, 'no retry after removal');
  const [{ n }] = (await db('outbox').where({ kind: 'webhook.deliver', status: 'pending' }).count({ n: '*' })) as [{ n: string }];
  t.equal(Number(n), 0, 'nothing left queued');
});

eachDb('outbox: failing rows back off, die visibly, and can be requeued', async (t, { db }) => {
  let fail = true;
  const runs: number[] = [];
  const env = await makeApp(db, {}, undefined, {
    extraHandlers: [
      {
        kind: 'test.flaky',
        backoffSeconds: [10, 20],
        run: async (row) => {
          runs.push(row.attempts);
          return fail ? { retry: `boom ${row.attempts}` } : { done: true };
        },
      },
    ],
  });
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const now = env.clock.now();
  await db('outbox').insert({ tenant_id: ten.tenantId, kind: 'test.flaky', payload: '{}', run_at: now, created_at: now, updated_at: now });
  const drain = () => drainOutbox(env.app.deps, env.app.deps.handlers);
  t.equal(await drain(), 1);
  env.clock.advance(9_000);
  t.equal(await drain(), 0, 'backing off');
  env.clock.advance(1_000);
  t.equal(await drain(), 1);
  env.clock.advance(20_000);
  t.equal(await drain(), 1);
  t.same(runs, [1, 2, 3]);
  const dead = await client(env.app, ten.keys.admin).get('/v1/outbox/dead');
  t.match(dead.body.data, [{ kind: 'test.flaky', attempts: 3, last_error: 'boom 3' }]);
  env.clock.advance(3600_000);
  t.equal(await drain(), 0, 'a dead row is not retried');
  const out: string[] = [];
  const cliIo = { io: { out: (l: string) => out.push(l), err: (l: string) => out.push(l) }, db, clock: env.clock };
  t.equal(await runCli(['outbox', 'dead'], cliIo), 0);
  t.match(out.join('\n'), new RegExp(`${dead.body.data[0].id}  test.flaky  attempts 3 .* last error: boom 3`), 'the CLI shows it too');
  fail = false;
  const re = await client(env.app, ten.keys.admin).post(`/v1/outbox/${dead.body.data[0].id}/requeue`);
  t.same(re.body, { id: dead.body.data[0].id, status: 'pending' });
  t.equal(await drain(), 1);
  t.same((await client(env.app, ten.keys.admin).get('/v1/outbox/dead')).body.data, []);
  const row = (await db('outbox').where({ kind: 'test.flaky' }).first()) as { status: string };
  t.equal(row.status, 'done');
});

eachDb('outbox: event fan-out runs as one batch and completes every row once', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const admin = client(env.app, ten.keys.admin);
  await admin.post('/v1/webhook-endpoints', { url: 'https://a.example/hooks', events: ['payment.succeeded'] });
  await admin.post('/v1/webhook-endpoints', { url: 'https://b.example/hooks', events: ['*'] });
  for (let i = 0; i < 3; i++) {
    const { payment } = await billAndPayment(env.app, ten.keys.integration);
    await payAt(env.sim, payment, 'success');
  }
  const rows = await claimBatch(db, env.clock, 50, 60, ['event.fanout']);
  t.equal(rows.length, 6, 'six events: three payment.succeeded, three bill.paid');
  await fanoutHandler.runBatch!(rows, env.app.deps);
  const done = (await db('outbox').where({ kind: 'event.fanout', status: 'done' })).length;
  t.equal(done, 6, 'every fan-out row completed');
  const deliveries = (await db('outbox').where({ kind: 'webhook.deliver', status: 'pending' }).select('payload')) as {
    payload: { event_id: string; endpoint_id: string };
  }[];
  t.equal(deliveries.length, 9, 'three to the first endpoint (payment.succeeded only), six to the second (*)');
  await fanoutHandler.runBatch!(rows, env.app.deps);
  t.equal((await db('outbox').where({ kind: 'webhook.deliver' })).length, 9, 'running a batch again (lease gone) adds nothing');
  const metrics = await env.app.inject('/metrics');
  t.notMatch(metrics.body, /feegate_outbox_batch_fallbacks_total\{kind="event.fanout"\} [1-9]/, 'no batch fell back');
});
