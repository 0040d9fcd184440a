import { eachDb, snapshot } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant } from './helpers/app.js';
import crypto from 'node:crypto';
import canonicalize from 'canonicalize';
import { fingerprint, fingerprintKey, pruneIdempotencyKeys } from '../gateway/http/idempotency.js';
import { parseKey } from '../gateway/secrets/secret-box.js';
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

eachDb('Idempotency-Key: refusals before the request began executing are not stored; once the conflict is gone the key runs', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  // A payment in flight blocks the bill: a second payment is refused with a 409 …
  const first = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' });
  t.equal(first.status, 201);
  const h = { 'idempotency-key': 'pay-after-conflict' };
  const refused = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, h);
  t.equal(refused.status, 409);
  t.equal(refused.body.error.code, 'FEEGATE_ERR_PAYMENT_IN_PROGRESS');
  t.equal(await db('idempotency_keys').where({ tenant_id: ten.tenantId, key: 'pay-after-conflict' }).first(), undefined, "the refusal is not the key's answer");
  // … the first payment is abandoned (the payer cancels): the conflict is gone, the same key now pays.
  await env.sim.openUrl(first.body.checkout.url);
  await env.sim.complete(first.body.reference, 'cancel');
  t.equal((await api.get(`/v1/payments/${first.body.id}`)).body.status, 'cancelled');
  const retry = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, h);
  t.equal(retry.status, 201, 'the retry ran');
  t.equal(retry.headers['idempotent-replayed'], undefined, 'not a replay');
  const replay = await api.post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, h);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body.id, retry.body.id, 'and now it replays the payment');

  // A cancelled bill: the refusal is not stored either.
  const gone = (await api.post('/v1/bills', billInput())).body;
  await api.post(`/v1/bills/${gone.id}/cancel`);
  const c = { 'idempotency-key': 'pay-cancelled' };
  t.equal((await api.post('/v1/payments', { bill_id: gone.id, provider: 'sandbox' }, c)).status, 409);
  const again = await api.post('/v1/payments', { bill_id: gone.id, provider: 'sandbox' }, c);
  t.equal(again.status, 409);
  t.equal(again.headers['idempotent-replayed'], undefined, 'decided afresh, not replayed');

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
  const [p] = await db('payments')
    .insert({
      tenant_id: ten.tenantId,
      bill_id: bill.id,
      reference: newReference(),
      provider: 'sandbox_api',
      amount: 58_000,
      status: 'created',
      expires_at: new Date(now.getTime() + 900_000),
      created_at: now,
      updated_at: now,
    })
    .returning('*');
  await db('provider_requests').insert({
    tenant_id: ten.tenantId,
    provider: 'sandbox_api',
    kind: 'checkout_create',
    request_id: p.reference,
    payment_id: p.id,
    state: 'prepared',
    created_at: now,
    updated_at: now,
  });
  const serverKey = fingerprintKey(parseKey(env.app.deps.config.masterKey!));
  await db('idempotency_keys').insert({
    tenant_id: ten.tenantId,
    key: 'crash-1',
    method: 'POST',
    path: '/v1/payments',
    fingerprint: fingerprint(serverKey, 'POST', '/v1/payments', body),
    status: 'in_flight',
    locked_until: new Date(now.getTime() + 60_000),
    recovery: JSON.stringify({ payment_id: p.id }),
    created_at: now,
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

eachDb('Idempotency-Key: replays are the first response byte for byte (jsonb would reorder keys)', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const post = (url: string, body: unknown, key: string) =>
    env.app.inject({
      method: 'POST',
      url,
      payload: JSON.stringify(body),
      headers: { authorization: `Bearer ${ten.keys.integration}`, 'content-type': 'application/json', 'idempotency-key': key },
    });
  // Keys in an order jsonb does not keep (it sorts shorter keys first).
  const input = billInput({ external_ref: 'bytes-1', metadata: { zeta_long_key: 'z', b: 'b', a: 'a' } });
  const first = await post('/v1/bills', input, 'bytes-bill');
  t.equal(first.statusCode, 201);
  const replay = await post('/v1/bills', input, 'bytes-bill');
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body, first.body, 'the same bytes');
  t.match(String(replay.headers['content-type']), /^application\/json/);
  const bill = JSON.parse(first.body) as { id: string };
  const pay = await post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, 'bytes-payment');
  t.equal(pay.statusCode, 201);
  const again = await post('/v1/payments', { bill_id: bill.id, provider: 'sandbox' }, 'bytes-payment');
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.body, pay.body, 'a payment replays byte for byte too');
  // An answer with a free-form object built in the handler's order (the unit's non-secret credentials).
  const cred = (key: string) =>
    env.app.inject({
      method: 'POST',
      url: '/v1/provider-credentials/vnpay',
      headers: { authorization: `Bearer ${ten.keys.admin}`, 'content-type': 'application/json', 'idempotency-key': key },
      payload: JSON.stringify({
        credentials: { tmn_code: 'UNIT0001', hash_secret: 's3cret', pay_url: 'https://vnpay.example/pay', api_url: 'https://vnpay.example/api' },
      }),
    });
  const c1 = await cred('bytes-cred');
  t.equal(c1.statusCode, 200);
  const c2 = await cred('bytes-cred');
  t.equal(c2.headers['idempotent-replayed'], 'true');
  t.equal(c2.body, c1.body, 'the credentials answer replays byte for byte');
});

eachDb('Idempotency-Key: the stored fingerprint is an HMAC under a server key, not the SHA-256 of the body; reuse is still caught', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const admin = client(env.app, ten.keys.admin);
  // A body that carries a provider secret.
  const body = {
    credentials: { tmn_code: 'UNIT0001', hash_secret: 'low-entropy-secret-123', pay_url: 'https://vnpay.example/pay', api_url: 'https://vnpay.example/api' },
  };
  const h = { 'idempotency-key': 'cred-1' };
  const first = await admin.post('/v1/provider-credentials/vnpay', body, h);
  t.equal(first.status, 200, JSON.stringify(first.body).slice(0, 200));
  const row = (await db('idempotency_keys').where({ tenant_id: ten.tenantId, key: 'cred-1' }).first()) as { fingerprint: string; response_body: string };
  const plain = crypto
    .createHash('sha256')
    .update(`POST /v1/provider-credentials/vnpay\n${canonicalize(body)}`)
    .digest('hex');
  t.not(row.fingerprint.replace(/^h1:/, ''), plain, 'not the plain SHA-256 of the body');
  t.notMatch(row.fingerprint, new RegExp(plain), 'nor contains it');
  t.notMatch(row.response_body, /low-entropy-secret-123/, 'the stored answer does not carry the secret');
  const serverKey = fingerprintKey(parseKey(env.app.deps.config.masterKey!));
  t.equal(row.fingerprint, fingerprint(serverKey, 'POST', '/v1/provider-credentials/vnpay', body), 'HMAC under the key derived from the master key');
  t.not(
    fingerprint(fingerprintKey(crypto.randomBytes(32)), 'POST', '/v1/provider-credentials/vnpay', body),
    row.fingerprint,
    'another master key, another fingerprint',
  );
  const replay = await admin.post('/v1/provider-credentials/vnpay', body, h);
  t.equal(replay.headers['idempotent-replayed'], 'true', 'the same body replays');
  const reused = await admin.post('/v1/provider-credentials/vnpay', { credentials: { ...body.credentials, hash_secret: 'another-secret-456' } }, h);
  t.equal(reused.status, 422);
  t.equal(reused.body.error.code, 'FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED', 'another body with the key is still refused');
});
