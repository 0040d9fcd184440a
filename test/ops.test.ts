import t from 'tap';
import { eachDb } from './helpers/db.js';
import { client, makeApp, seedTenant } from './helpers/app.js';
import { loadConfig } from '../gateway/config.js';
import { ERRORS } from '../gateway/errors.js';
import { vnd } from '../gateway/money.js';

eachDb('ops: health, metrics, OpenAPI, docs, request ids, rate limit', async (t, { db }) => {
  const env = await makeApp(db, { rateLimitPerMinute: 5 });
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const health = await env.app.inject('/healthz');
  t.equal(health.statusCode, 200);
  t.same(health.json(), { status: 'ok' });

  const spec = (await env.app.inject('/openapi.json')).json();
  t.equal(spec.openapi, '3.0.3');
  t.ok(spec.paths['/v1/payments'].post.requestBody, 'payment creation is documented with its body');
  t.ok(spec.paths['/v1/notify/sandbox'].post, 'the callback route is documented');
  t.notOk(
    Object.keys(spec.paths).some((p: string) => p.startsWith('/sandbox')),
    'the simulator is not part of the API',
  );
  const docs = await env.app.inject('/docs/');
  t.equal(docs.statusCode, 200);
  t.match(docs.body, /swagger/i);

  const api = client(env.app, ten.keys.integration);
  const r = await api.get('/v1/tenant', { 'x-request-id': 'req-123' });
  t.equal(r.headers['x-request-id'], 'req-123', 'a caller request id is echoed');
  t.match(String((await api.get('/v1/tenant')).headers['x-request-id']), /^[0-9a-f-]{36}$/);

  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await api.get('/v1/tenant')).status);
  t.equal(statuses.at(-1), 429);
  const limited = await api.get('/v1/tenant');
  t.equal(limited.body.error.code, 'FEEGATE_ERR_RATE_LIMITED');
  t.ok(limited.headers['retry-after'], 'says when to retry');
  t.equal((await client(env.app, ten.keys.finance).get('/v1/tenant')).status, 200, 'the limit is per key');

  const metrics = await env.app.inject('/metrics');
  t.equal(metrics.statusCode, 200);
  t.match(metrics.body, /feegate_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/tenant"/);
});

t.test('configuration: production refuses what is only for development', async (t) => {
  t.throws(() => loadConfig({ FEEGATE_MODE: 'production', DATABASE_URL: 'postgres://x/y', FEEGATE_SANDBOX: 'true' }), /refuses the sandbox/);
  t.throws(() => loadConfig({ FEEGATE_MODE: 'production' }), /needs DATABASE_URL/);
  t.throws(() => loadConfig({ FEEGATE_MODE: 'production', DATABASE_URL: 'postgres://x/y' }), /needs FEEGATE_MASTER_KEY/);
  const prod = loadConfig({ FEEGATE_MODE: 'production', DATABASE_URL: 'postgres://x/y', FEEGATE_MASTER_KEY: 'A'.repeat(43) + '=' });
  t.equal(prod.sandbox, false, 'sandbox is off by default in production');
  t.equal(loadConfig({}).sandbox, true, 'and on in development');
  t.throws(() => loadConfig({ PORT: 'eighty' }), /PORT must be/);
  t.throws(() => loadConfig({ FEEGATE_MODE: 'staging' }), /FEEGATE_MODE/);
  t.equal(loadConfig({ PORT: '8080', HOST: '0.0.0.0' }).publicUrl, 'http://localhost:8080');
});

t.test('errors: every code is declared once, with a 4xx/5xx status', async (t) => {
  const codes = Object.keys(ERRORS);
  t.equal(new Set(codes).size, codes.length);
  for (const [code, e] of Object.entries(ERRORS)) {
    t.match(code, /^FEEGATE_ERR_[A-Z_]+$/);
    t.ok(e.status >= 400 && e.status < 600, `${code} has an error status`);
  }
});

t.test('money: database values become checked safe integers', async (t) => {
  t.equal(vnd('58000'), 58000);
  t.equal(vnd(58000n), 58000);
  t.equal(vnd(null), 0);
  t.throws(() => vnd('9007199254740993'), /safe integer/);
  t.throws(() => vnd('12.5'), /not an integer|safe integer/);
  t.throws(() => vnd(1.5), /safe integer/);
});
