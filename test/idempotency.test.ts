import { eachDb, snapshot } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant } from './helpers/app.js';
import { pruneIdempotencyKeys } from '../gateway/http/idempotency.js';
import { newReference } from '../gateway/payments/payments.js';

eachDb('Idempotency-Key: the first response is stored and replayed', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  const h = { 'idempotency-key': 'pay-1' };
  const first = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, h);
  t.equal(first.status, 201);
  const again = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, h);
  t.equal(again.status, 201);
  t.same(again.body, first.body, 'same body');
  t.equal(again.headers['idempotent-replayed'], 'true');
  const [{ n }] = (await db('payments').where({ bill_id: bill.id }).count({ n: '*' })) as [{ n: string }];
  t.equal(Number(n), 1, 'one payment');

  const other = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox', amount: 1 }, h);
  t.equal(other.status, 422);
  t.equal(other.body.error.code, 'FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED');

  // Keys belong to a tenant: another tenant may use the same key string.
  const ten2 = await seedTenant(db, env.clock);
  const b2 = (await client(env.app, ten2.keys.integration).post('/v1/bills', billInput())).body;
  const p2 = await client(env.app, ten2.keys.integration).post('/v1/payments', { bill_id: b2.id, provider: 'sandbox' }, h);
  t.equal(p2.status, 201);
  t.not(p2.body.id, first.body.id);
});

eachDb('Idempotency-Key: business errors are stored, validation errors are not', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  await api.post(`/v1/bills/${bill.id}/cancel`);
  const h = { 'idempotency-key': 'pay-cancelled' };
  const refused = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, h);
  t.equal(refused.status, 409);
  const replay = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, h);
  t.equal(replay.status, 409);
  t.equal(replay.headers['idempotent-replayed'], 'true', 'the 409 was stored and replayed');
  t.same(replay.body, refused.body);

  const v = { 'idempotency-key': 'bill-invalid-then-valid' };
  const bad = await api.post('/v1/bills', billInput({ items: [] }), v);
  t.equal(bad.status, 400);
  const good = await api.post('/v1/bills', billInput(), v);
  t.equal(good.status, 201, 'a request refused by validation did not burn the key');
});

eachDb('Idempotency-Key: a request racing one in flight gets 409', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  env.sim.queueScenario({ create: 'timeout', delayMs: 400 }); // the provider takes 400 ms to answer
  const h = { 'idempotency-key': 'race-1' };
  const slow = api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox_api' }, h);
  await new Promise((r) => setTimeout(r, 150));
  const racing = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox_api' }, h);
  t.equal(racing.status, 409);
  t.equal(racing.body.error.code, 'FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS');
  const first = await slow;
  t.equal(first.status, 201);
  t.equal(first.body.status, 'pending');
  const after = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox_api' }, h);
  t.same(after.body, first.body, 'once finished, the key replays');
});

eachDb('Idempotency-Key: a retry after a crash resumes from the recovery point', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  const body = { bill_id: bill.id, provider: 'sandbox_api' };
  // What the first transaction leaves behind when the process dies before asking the provider:
  // a `created` payment, its create request still `prepared` (never sent), and the key in flight
  // with that payment as its recovery point.
  const now = env.clock.now();
  const [p] = await db('payments').insert({
    tenant_id: ten.tenantId, bill_id: bill.id, reference: newReference(), provider: 'sandbox_api', amount: 58_000,
    status: 'created', expires_at: new Date(now.getTime() + 900_000), created_at: now, updated_at: now,
  }).returning('*');
  await db('provider_requests').insert({
    tenant_id: ten.tenantId, provider: 'sandbox_api', kind: 'checkout_create', request_id: p.reference, payment_id: p.id, state: 'prepared', created_at: now, updated_at: now,
  });
  const { fingerprint } = await import('../gateway/http/idempotency.js');
  await db('idempotency_keys').insert({
    tenant_id: ten.tenantId, key: 'crash-1', method: 'POST', path: '/v1/payments', fingerprint: fingerprint('POST', '/v1/payments', body),
    status: 'in_flight', locked_until: new Date(now.getTime() + 60_000), recovery: JSON.stringify({ payment_id: p.id }), created_at: now,
  });
  const h = { 'idempotency-key': 'crash-1' };
  const early = await api.post('/v1/payments', body, h);
  t.equal(early.status, 409, 'while the dead request still holds the lock, a retry waits');
  env.clock.advance(61_000);
  const resumed = await api.post('/v1/payments', body, h);
  t.equal(resumed.status, 201);
  t.equal(resumed.body.id, p.id, 'the same payment, not a second one');
  t.equal(resumed.body.status, 'pending', 'the checkout was created on resume');
  const [{ n }] = (await db('payments').where({ bill_id: bill.id }).count({ n: '*' })) as [{ n: string }];
  t.equal(Number(n), 1);
  t.same((await api.post('/v1/payments', body, h)).body, resumed.body, 'and it now replays');
});

eachDb('Idempotency keys are kept at least 24 hours, then pruned', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const h = { 'idempotency-key': 'old-key' };
  const first = await api.post('/v1/bills', billInput({ external_ref: 'prune-1' }), h);
  env.clock.advance(24 * 3600_000 + 1);
  t.equal(await pruneIdempotencyKeys(db, env.clock), 0, 'kept after 24 h');
  const replay = await api.post('/v1/bills', billInput({ external_ref: 'prune-1' }), h);
  t.same(replay.body, first.body);
  env.clock.advance(24 * 3600_000);
  const before = await snapshot(db);
  t.equal(await pruneIdempotencyKeys(db, env.clock), 1, 'pruned after 48 h');
  t.equal((await snapshot(db)).idempotency_keys, Number(before.idempotency_keys) - 1);
});
