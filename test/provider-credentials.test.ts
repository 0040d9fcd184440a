/**
 * Each unit's own provider credentials: sealed at rest, write-only secrets, validated against what
 * the adapter declares, used for that unit's payments (and only that unit's), removable; without
 * sandbox mode a provider is unusable until the unit has set them.
 */
import { eachDb } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant } from './helpers/app.js';
import { ManualClock } from '../gateway/clock.js';

eachDb('provider credentials: per unit, sealed, write-only, used for its payments', async (t, { db }) => {
  const logs: string[] = [];
  const env = await makeApp(db, {}, new ManualClock('2026-03-10T02:00:00Z'), {
    logger: {
      level: 'trace',
      stream: {
        write: (line: string) => {
          logs.push(line);
        },
      },
    },
  });
  t.teardown(env.close);
  const a = await seedTenant(db, env.clock);
  const b = await seedTenant(db, env.clock);
  const admin = client(env.app, a.keys.admin);
  const sim = env.app.simulators!.paygov;
  const good = { partner_code: sim.opts.partner.partnerCode, secret: sim.opts.partner.secret, endpoint: 'http://feegate.test/sandbox/paygov' };

  // Validation against the adapter's declared fields.
  const missing = await admin.post('/v1/provider-credentials/paygov', { credentials: { partner_code: 'X' } });
  t.equal(missing.status, 400);
  t.same(missing.body.error.details.missing, ['secret', 'endpoint']);
  const unknown = await admin.post('/v1/provider-credentials/paygov', { credentials: { ...good, pin: '1234' } });
  t.same(unknown.body.error.details.unknown, ['pin']);
  t.equal(
    (await admin.post('/v1/provider-credentials/sandbox', { credentials: { secret: 'x' } })).body.error.code,
    'FEEGATE_ERR_PROVIDER_UNKNOWN',
    'sandbox providers take no unit credentials',
  );
  t.equal((await client(env.app, a.keys.finance).post('/v1/provider-credentials/paygov', { credentials: good })).status, 403, 'admins only');

  // A wrong secret is really used: the hub refuses the checksum.
  const wrong = await admin.post('/v1/provider-credentials/paygov', { credentials: { ...good, secret: 'not-the-hub-secret' } });
  t.equal(wrong.status, 200);
  t.same(wrong.body.fields, { endpoint: good.endpoint, partner_code: good.partner_code, secret: '(set)' }, 'the secret is never shown');
  const api = client(env.app, a.keys.integration);
  const p1 = (await api.post('/v1/payments', { bill_id: (await api.post('/v1/bills', billInput())).body.id, provider: 'paygov' })).body;
  t.equal(p1.status, 'failed');
  t.match(p1.failure, { code: 'paygov_97' }, "the unit's own (wrong) secret signed the request");

  // The right ones: payments work, and the stored row does not contain them.
  t.equal((await admin.post('/v1/provider-credentials/paygov', { credentials: good })).status, 200);
  const p2 = (await api.post('/v1/payments', { bill_id: (await api.post('/v1/bills', billInput())).body.id, provider: 'paygov' })).body;
  t.equal(p2.status, 'pending');
  const row = (await db('provider_credentials').where({ tenant_id: a.tenantId, provider: 'paygov' }).first()) as { sealed: string; fields: string[] };
  t.notOk(row.sealed.includes(good.secret) || row.sealed.includes(good.partner_code), 'sealed at rest');
  t.same(row.fields, ['endpoint', 'partner_code', 'secret'], 'only the field names in clear');
  const listed = await admin.get('/v1/provider-credentials');
  t.notOk(JSON.stringify(listed.body).includes(good.secret), 'never returned');
  t.equal(listed.body.data.length, 1);

  // Unit b sees none of it, and its payments still use the sandbox defaults (not a's wrong history).
  t.equal((await client(env.app, b.keys.admin).get('/v1/provider-credentials')).body.data.length, 0, 'another unit does not see them');
  const bApi = client(env.app, b.keys.integration);
  const pb = (await bApi.post('/v1/payments', { bill_id: (await bApi.post('/v1/bills', billInput())).body.id, provider: 'paygov' })).body;
  t.equal(pb.status, 'pending');

  t.ok(logs.length > 10, 'the gateway logged at trace level throughout');
  t.notOk(
    logs.some((l) => l.includes(good.secret) || l.includes('not-the-hub-secret')),
    'no secret in any log line',
  );

  // Removal.
  t.equal((await admin.post('/v1/provider-credentials/paygov/remove')).status, 200);
  t.equal(
    (await admin.post('/v1/provider-credentials/paygov/remove', {}, { 'idempotency-key': 'again' })).body.error.code,
    'FEEGATE_ERR_PROVIDER_CREDENTIALS_NOT_FOUND',
  );
});

eachDb("provider credentials: without sandbox mode a provider needs the unit's credentials", async (t, { db }) => {
  const env = await makeApp(db, { sandbox: false });
  t.teardown(env.close);
  const a = await seedTenant(db, env.clock);
  const api = client(env.app, a.keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  const before = await api.post('/v1/payments', { bill_id: bill.id, provider: 'vnpay' });
  t.equal(before.status, 400);
  t.equal(before.body.error.code, 'FEEGATE_ERR_PROVIDER_UNKNOWN');
  t.match(before.body.error.message, /no credentials for this unit/);
  await client(env.app, a.keys.admin).post('/v1/provider-credentials/vnpay', {
    credentials: {
      tmn_code: 'UNIT0001',
      hash_secret: 'unit-secret',
      pay_url: 'https://vnpay.example/paymentv2/vpcpay.html',
      api_url: 'https://vnpay.example/api',
    },
  });
  const after = await api.post('/v1/payments', { bill_id: bill.id, provider: 'vnpay' });
  t.equal(after.status, 201);
  t.match(after.body.checkout.url, /^https:\/\/vnpay\.example\/paymentv2\/vpcpay\.html\?.*vnp_TmnCode=UNIT0001/, "the unit's terminal signs its checkout");
});
