/**
 * SSRF (issue 10): URLs the gateway calls on someone else's say (webhook endpoints, a unit's provider
 * `endpoint`/`pay_url`/`api_url`) are refused at registration when they point anywhere but a public
 * https host, and checked again at call time on the address they resolve to (DNS rebinding). A
 * delivery's answer is stored up to 1 KiB; nothing is ever delivered in-process to our own routes.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { eachDb } from './helpers/db.js';
import { billAndPayment, billInput, client, LOOPBACK_ALLOWED, makeApp, payAt, PUBLIC_URL, seedTenant, type TestApp } from './helpers/app.js';
import { startReceiver } from './helpers/receiver.js';
import { drainOutbox } from '../gateway/outbox/outbox.js';
import { createEndpoint } from '../gateway/webhooks/endpoints.js';
import { ProviderCredentials } from '../gateway/provider-credentials/store.js';
import { loadConfig } from '../gateway/config.js';
import type { Db } from '../gateway/db/knex.js';

/** Every form the issue names, and their cousins. Each must be refused wherever a URL is registered. */
const REFUSED: [form: string, what: string][] = [
  ['http://127.0.0.1:5432/', 'loopback (the database port)'],
  ['http://127.0.0.2/', 'loopback, not .1'],
  ['http://[::1]/', 'IPv6 loopback'],
  ['http://localhost:3000/', 'localhost by name'],
  ['http://api.localhost/', 'a *.localhost name'],
  ['http://169.254.169.254/latest/meta-data/', 'cloud metadata (link-local)'],
  ['http://[fe80::1]/', 'IPv6 link-local'],
  ['http://[::ffff:127.0.0.1]/', 'IPv4-mapped IPv6 loopback'],
  ['http://[::ffff:169.254.169.254]/', 'IPv4-mapped IPv6 metadata'],
  ['http://[::ffff:8.8.8.8]/', 'IPv4-mapped IPv6, even of a public address'],
  ['http://[64:ff9b::7f00:1]/', 'NAT64 of loopback'],
  ['http://2130706433/', 'decimal 127.0.0.1'],
  ['http://0x7f.0.0.1/', 'hex octet'],
  ['http://0x7f000001/', 'hex whole'],
  ['http://0177.0.0.1/', 'octal'],
  ['http://127.1/', 'short form'],
  ['http://134744072/', 'decimal, even of a public address (8.8.8.8)'],
  ['http://%31%32%37.0.0.1/', 'percent-encoded'],
  ['http://10.1.2.3/', 'private 10/8'],
  ['http://172.16.0.5/', 'private 172.16/12'],
  ['http://192.168.1.10:8080/', 'private 192.168/16'],
  ['http://[fd12:3456::1]/', 'IPv6 unique-local'],
  ['http://100.64.0.1/', 'CGNAT'],
  ['http://224.0.0.251/', 'multicast'],
  ['http://[ff02::1]/', 'IPv6 multicast'],
  ['http://0.0.0.0/', 'unspecified'],
  ['http://[::]/', 'IPv6 unspecified'],
  ['https://user:pass@hooks.example.com/', 'credentials'],
  ['https://hooks.example.com@127.0.0.1/', 'a public name as userinfo before a loopback host'],
  ['https://@hooks.example.com/', 'an empty userinfo'],
  ['file:///etc/passwd', 'file scheme'],
  ['gopher://127.0.0.1:6379/_FLUSHALL', 'gopher scheme'],
  ['ftp://hooks.example.com/', 'ftp scheme'],
  ['http:\\\\127.0.0.1\\', 'backslashes'],
  ['http://hooks.example.com\t.evil/', 'a tab the parser would drop'],
  [`${PUBLIC_URL}/sandbox/control/orders/P1/complete`, "the gateway itself: its simulator's control API"],
  [`${PUBLIC_URL}/sandbox/%63ontrol/orders/P1/complete`, 'the same, percent-encoded'],
  [`${PUBLIC_URL}/sandbox/vnpay/control/orders/P1/complete`, "the VNPay simulator's control API"],
  [`${PUBLIC_URL}/v1/payments`, "the gateway's own API"],
];

/** Every row a refused registration could have written. */
async function counts(db: Db) {
  const out: Record<string, number> = {};
  for (const table of ['webhook_endpoints', 'provider_credentials', 'audit_log', 'outbox']) {
    const [{ n }] = (await db(table).count({ n: '*' })) as [{ n: string }];
    out[table] = Number(n);
  }
  return out;
}

eachDb('ssrf: every refused form, for webhook endpoints and provider credential URLs, is a 400 that writes nothing', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const admin = client(env.app, ten.keys.admin);
  const before = await counts(db);
  const momo = (endpoint: string) => ({ partner_code: 'MOMOX', access_key: 'a'.repeat(16), secret_key: 's'.repeat(32), endpoint });
  const vnpay = (urls: { pay_url?: string; api_url?: string }) => ({
    tmn_code: 'TMN1',
    hash_secret: 'h'.repeat(32),
    pay_url: 'https://pay.vnpay.example/vpcpay.html',
    api_url: 'https://api.vnpay.example/api',
    ...urls,
  });
  for (const [form, what] of REFUSED) {
    const attempts = {
      'webhook url': await admin.post('/v1/webhook-endpoints', { url: form, events: ['*'] }),
      'momo endpoint': await admin.post('/v1/provider-credentials/momo', { credentials: momo(form) }),
      'vnpay pay_url': await admin.post('/v1/provider-credentials/vnpay', { credentials: vnpay({ pay_url: form }) }),
      'vnpay api_url': await admin.post('/v1/provider-credentials/vnpay', { credentials: vnpay({ api_url: form }) }),
    };
    for (const [where, res] of Object.entries(attempts)) {
      t.match(
        { status: res.status, code: res.body?.error?.code },
        { status: 400, code: 'FEEGATE_ERR_URL_NOT_ALLOWED' },
        `${where} ${JSON.stringify(form)} (${what}) is refused`,
      );
    }
  }
  t.same(await counts(db), before, 'nothing written: no endpoint, no credentials, no audit line, no outbox row');

  // The same routes take good URLs (so the refusals above are the URLs').
  t.equal((await admin.post('/v1/webhook-endpoints', { url: 'https://hooks.school.example/feegate', events: ['*'] })).status, 201, 'a public https webhook');
  t.equal(
    (await admin.post('/v1/provider-credentials/momo', { credentials: momo('https://payment.momo.example') })).status,
    200,
    'a public https provider URL',
  );
  t.equal(
    (await admin.post('/v1/provider-credentials/momo', { credentials: momo(`${PUBLIC_URL}/sandbox/momo`) })).status,
    200,
    "sandbox mode: the gateway's own simulator is allowed as a provider URL",
  );
  t.equal(
    (await admin.post('/v1/webhook-endpoints', { url: 'http://hooks.school.example/feegate', events: ['*'] })).status,
    201,
    'sandbox mode: http is allowed',
  );
});

eachDb('ssrf: outside sandbox mode only https is accepted; the allow-list lets named private hosts in', async (t, { db }) => {
  const env = await makeApp(db, { sandbox: false, allowedPrivateHosts: ['hooks.internal', '10.20.0.0/16'] });
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const admin = client(env.app, ten.keys.admin);
  const http1 = await admin.post('/v1/webhook-endpoints', { url: 'http://hooks.school.example/feegate', events: ['*'] });
  t.match(http1.body.error, { code: 'FEEGATE_ERR_URL_NOT_ALLOWED', details: { field: 'url', reason: /https only/ } }, 'http webhook refused');
  const creds = await admin.post('/v1/provider-credentials/zalopay', {
    credentials: { app_id: '1', key1: 'k', key2: 'k', endpoint: 'http://sb-openapi.zalopay.example' },
  });
  t.match(creds.body.error, { code: 'FEEGATE_ERR_URL_NOT_ALLOWED', details: { field: 'endpoint' } }, 'http provider URL refused');
  t.equal((await admin.post('/v1/webhook-endpoints', { url: 'https://hooks.internal/feegate', events: ['*'] })).status, 201, 'an allowed name');
  t.equal((await admin.post('/v1/webhook-endpoints', { url: 'https://10.20.3.4/feegate', events: ['*'] })).status, 201, 'an address in an allowed range');
  t.equal((await admin.post('/v1/webhook-endpoints', { url: 'https://10.21.3.4/feegate', events: ['*'] })).status, 400, 'but not one outside it');
  t.equal((await admin.post('/v1/webhook-endpoints', { url: 'https://0x0a.20.3.4/feegate', events: ['*'] })).status, 400, 'nor an allowed address in disguise');
});

t.test('ssrf: FEEGATE_ALLOWED_PRIVATE_HOSTS is parsed and checked at start', async (t) => {
  t.same(loadConfig({}).allowedPrivateHosts, [], 'empty by default');
  t.same(loadConfig({ FEEGATE_ALLOWED_PRIVATE_HOSTS: ' Hooks.Internal, 10.0.0.0/8,127.0.0.1 ,[::1]' }).allowedPrivateHosts, [
    'hooks.internal',
    '10.0.0.0/8',
    '127.0.0.1',
    '[::1]',
  ]);
  t.throws(
    () => loadConfig({ FEEGATE_ALLOWED_PRIVATE_HOSTS: '0x7f.0.0.1' }),
    /FEEGATE_ALLOWED_PRIVATE_HOSTS/,
    'an address in an odd form is a configuration error',
  );
  t.throws(() => loadConfig({ FEEGATE_ALLOWED_PRIVATE_HOSTS: 'http://hooks.internal/' }), /FEEGATE_ALLOWED_PRIVATE_HOSTS/, 'a URL is not a host');
});

/** Events for a tenant: one sandbox payment succeeds (payment.succeeded, bill.paid, receipt.issued). */
async function someEvents(env: TestApp, key: string) {
  const { payment } = await billAndPayment(env.app, key);
  await payAt(env.sim, payment, 'success');
  await drainOutbox(env.app.deps, env.app.deps.handlers);
  await drainOutbox(env.app.deps, env.app.deps.handlers);
}

async function attemptsOf(db: Db, endpointId: string) {
  return (await db('webhook_attempts').where({ endpoint_id: endpointId }).orderBy('id')) as {
    status_code: number | null;
    error: string | null;
    response_excerpt: string;
  }[];
}

eachDb('ssrf: an endpoint stored before these checks is checked again at delivery; so is a unit provider URL at call time', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const rx = await startReceiver();
  t.teardown(rx.close);
  const ten = await seedTenant(db, env.clock);
  // A row as the old registration let it in: straight to loopback.
  const { endpoint } = await db.transaction((trx) =>
    createEndpoint(trx, env.clock, env.app.deps.secrets, { tenantId: ten.tenantId, url: rx.url, events: ['*'], actor: 'test' }),
  );
  await someEvents(env, ten.keys.integration);
  t.equal(rx.received.length, 0, 'the loopback service received nothing');
  const tries = await attemptsOf(db, endpoint.id);
  t.ok(tries.length > 0, 'deliveries were attempted');
  t.ok(
    tries.every((a) => a.status_code === null && /loopback/.test(a.error ?? '')),
    'each one refused, and the attempt says why',
  );

  // A unit's MoMo endpoint stored before the check: the adapter's call is refused before it leaves.
  const lax = new ProviderCredentials({
    db,
    clock: env.clock,
    secrets: env.app.deps.secrets,
    urlPolicy: { allowHttp: true, allowedPrivateHosts: ['0.0.0.0/0'] },
  });
  await db.transaction((trx) =>
    lax.set(
      trx,
      ten.tenantId,
      env.app.deps.providers.get('momo')!,
      {
        partner_code: 'MOMOX',
        access_key: 'a'.repeat(16),
        secret_key: 's'.repeat(32),
        endpoint: rx.url.replace('/hooks', ''),
      },
      'test',
    ),
  );
  const api = client(env.app, ten.keys.integration);
  const bill = (await api.post('/v1/bills', billInput())).body;
  const pay = await api.post('/v1/payments', { bill_id: bill.id, provider: 'momo' });
  t.equal(rx.received.length, 0, 'MoMo "create" never reached the loopback service (with the unit\'s keys in it)');
  t.not(pay.body.status, 'succeeded');
});

eachDb(
  'ssrf: DNS rebinding — a name that resolves to 127.0.0.1 at delivery time is refused; an allowed name connects to the address checked',
  async (t, { db }) => {
    const rx = await startReceiver();
    t.teardown(rx.close);
    const port = new URL(rx.url).port;
    const asked: string[] = [];
    // The rebinding DNS server: the name looked public when it was registered; now it answers loopback (mixed with a public address).
    const resolve = async (host: string) => {
      asked.push(host);
      if (host === 'hooks.rebind.example' || host === 'momo.rebind.example')
        return [
          { address: '93.184.216.34', family: 4 },
          { address: '127.0.0.1', family: 4 },
        ];
      if (host === 'only.rebind.example') return [{ address: '127.0.0.1', family: 4 }];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    const env = await makeApp(db, {}, undefined, { resolve });
    t.teardown(env.close);
    const ten = await seedTenant(db, env.clock);
    const admin = client(env.app, ten.keys.admin);
    const ep = await admin.post('/v1/webhook-endpoints', { url: `http://hooks.rebind.example:${port}/hooks`, events: ['payment.succeeded'] });
    t.equal(ep.status, 201, 'a host name is accepted at registration');
    const ep2 = await admin.post('/v1/webhook-endpoints', { url: `http://only.rebind.example:${port}/hooks`, events: ['payment.succeeded'] });
    await someEvents(env, ten.keys.integration);
    t.equal(rx.received.length, 0, 'nothing reached 127.0.0.1');
    for (const id of [ep.body.id, ep2.body.id]) {
      const [a] = await attemptsOf(db, id);
      t.match(a, { status_code: null, error: /127\.0\.0\.1 is a loopback address/ }, 'refused on the address the name resolved to');
    }
    t.ok(asked.includes('hooks.rebind.example') && asked.includes('only.rebind.example'), 'the names were resolved at delivery time');

    // Provider calls too: a unit's MoMo endpoint whose name now resolves to loopback.
    await admin.post('/v1/provider-credentials/momo', {
      credentials: { partner_code: 'MOMOX', access_key: 'a'.repeat(16), secret_key: 's'.repeat(32), endpoint: `http://momo.rebind.example:${port}` },
    });
    const api = client(env.app, ten.keys.integration);
    await api.post('/v1/payments', { bill_id: (await api.post('/v1/bills', billInput())).body.id, provider: 'momo' });
    t.ok(asked.includes('momo.rebind.example'), 'the provider name was resolved at call time');
    t.equal(rx.received.length, 0, 'and the call refused');

    // Control: the operator allows the name. The delivery arrives at 127.0.0.1:<port>, the address the
    // resolver gave (real DNS knows no such name): the socket connects to what was resolved and checked.
    const env2 = await makeApp(db, { allowedPrivateHosts: ['only.rebind.example'] }, undefined, { resolve });
    t.teardown(env2.close);
    const ten2 = await seedTenant(db, env2.clock);
    await client(env2.app, ten2.keys.admin).post('/v1/webhook-endpoints', { url: `http://only.rebind.example:${port}/hooks`, events: ['payment.succeeded'] });
    await someEvents(env2, ten2.keys.integration);
    t.equal(rx.received.length, 1, 'an allowed name is delivered to');
    t.equal(rx.received[0]!.headers.host, `only.rebind.example:${port}`, 'with its own Host header');
  },
);

eachDb('ssrf: at most 1 KiB of a delivery answer is read and stored (and a NUL in it does not break the attempt log)', async (t, { db }) => {
  const answers: Record<string, string> = {
    '/big': 'ễ'.repeat(40_000), // 120 KB of 3-byte characters
    '/nul': `ok\u0000${'x'.repeat(2000)}`,
  };
  const server = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(answers[req.url ?? ''] ?? ''));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const env = await makeApp(db, LOOPBACK_ALLOWED);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const admin = client(env.app, ten.keys.admin);
  const big = await admin.post('/v1/webhook-endpoints', { url: `${base}/big`, events: ['payment.succeeded'] });
  t.equal(big.status, 201, 'loopback is accepted once the operator allows it');
  const nul = await admin.post('/v1/webhook-endpoints', { url: `${base}/nul`, events: ['payment.succeeded'] });
  await someEvents(env, ten.keys.integration);

  const [a] = await attemptsOf(db, big.body.id);
  t.match(a, { status_code: 200, error: null }, 'delivered');
  const stored = a!.response_excerpt;
  const bytes = Buffer.byteLength(stored, 'utf8');
  t.ok(bytes <= 1024, `stored ${bytes} bytes of a 120 KB answer, at most 1024`);
  t.ok(bytes > 1000, 'and not much less: the beginning of the answer');
  t.equal(stored, 'ễ'.repeat(stored.length), 'whole characters only, none cut in half');
  const fin = client(env.app, ten.keys.finance);
  const event = (await fin.get('/v1/events?type=payment.succeeded')).body.data[0];
  const shown = (await fin.get(`/v1/events/${event.id}/attempts`)).body.data as { endpoint_id: string; response_excerpt: string }[];
  t.equal(shown.find((x) => x.endpoint_id === big.body.id)?.response_excerpt, stored, 'the attempts API shows the same excerpt');

  const [n] = await attemptsOf(db, nul.body.id);
  t.match(n, { status_code: 200, error: null }, 'an answer with a NUL is delivered and logged');
  t.ok(n!.response_excerpt.startsWith('ok\uFFFDxx'), 'the NUL replaced');
});

eachDb("ssrf: no in-process delivery — a webhook aimed at the gateway's own simulator cannot complete another unit's payment", async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const victim = await seedTenant(db, env.clock);
  const attacker = await seedTenant(db, env.clock);
  const { payment } = await billAndPayment(env.app, victim.keys.integration);
  env.sim.openUrl(payment.checkout.url); // the payer opened the checkout and left it: pending
  const target = `${PUBLIC_URL}/sandbox/control/orders/${payment.reference}/complete`;
  const reg = await client(env.app, attacker.keys.admin).post('/v1/webhook-endpoints', { url: target, events: ['*'] });
  t.match(reg.body.error, { code: 'FEEGATE_ERR_URL_NOT_ALLOWED', details: { reason: /gateway itself/ } }, 'refused at registration');

  // Had it been stored (before this check), the delivery still goes out over the network, to a host it refuses.
  const { endpoint } = await db.transaction((trx) =>
    createEndpoint(trx, env.clock, env.app.deps.secrets, { tenantId: attacker.tenantId, url: target, events: ['*'], actor: 'test' }),
  );
  await someEvents(env, attacker.keys.integration);
  await drainOutbox(env.app.deps, env.app.deps.handlers);
  const tries = await attemptsOf(db, endpoint.id);
  t.ok(tries.length > 0, 'deliveries were attempted');
  t.ok(
    tries.every((a) => a.status_code === null),
    'none was answered by our own routes',
  );
  t.equal(env.sim.orders.get(payment.reference)?.status, 'PENDING', "the simulator did not complete the victim's order");
  const seen = await client(env.app, victim.keys.integration).get(`/v1/payments/${payment.id}`);
  t.equal(seen.body.status, 'pending', "the victim's payment is still pending");
});
