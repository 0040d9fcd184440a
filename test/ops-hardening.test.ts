/**
 * Operations under stress and attack (issue 10, medium): a database outage under a running app is
 * 503 + Retry-After (not 500) and /healthz says not ready while /livez stays up; a gateway started
 * before its database waits for it; /metrics is closed in production unless a token or its own
 * address is configured; a client's X-Request-Id is used only when it is short and plain.
 */
import t from 'tap';
import net from 'node:net';
import knexPkg from 'knex';
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import { eachDb, PG_URL, postgresAvailable } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant } from './helpers/app.js';
import { createDb, type Db } from '../gateway/db/knex.js';
import { isDatabaseUnavailable } from '../gateway/db/unavailable.js';
import { loadConfig } from '../gateway/config.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The PGlite instance behind a test knex (the helper hands it over through the connection function). */
function pgliteOf(db: Db): PGlite {
  const connection = (db.client as { config: { connection: () => { pglite: PGlite } } }).config.connection;
  return connection().pglite;
}

/** Takes the database away under the running app; returns how to bring it back (PostgreSQL only). */
async function outage(engine: string, db: Db, url?: string): Promise<(() => Promise<void>) | null> {
  if (engine === 'pglite') {
    await pgliteOf(db).close();
    return null;
  }
  const name = new URL(url!).pathname.slice(1);
  await admin(async (c) => {
    await c.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
  });
  return () =>
    admin(async (c) => {
      await c.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    });
}

eachDb('database outage under a running app: 503 with Retry-After, not ready, still alive', async (t, { db, engine, url }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const api = client(env.app, ten.keys.integration);
  t.equal((await api.get('/v1/bills')).status, 200, 'before: the API answers');

  const restore = await outage(engine, db, url);
  const answers = [
    ['list (key cached)', await api.get('/v1/bills')],
    ['create (key cached)', await api.post('/v1/bills', billInput(), { 'idempotency-key': 'outage-1' })],
    ['key lookup (not cached)', await client(env.app, ten.keys.finance).get('/v1/tenant')],
  ] as const;
  for (const [what, r] of answers) {
    t.equal(r.status, 503, `${what}: 503`);
    t.equal(r.body?.error?.code, 'FEEGATE_ERR_SERVICE_UNAVAILABLE', `${what}: the stable code`);
    t.match(String(r.headers['retry-after']), /^[1-9][0-9]*$/, `${what}: says when to retry`);
  }
  const health = await env.app.inject('/healthz');
  t.equal(health.statusCode, 503, '/healthz: not ready');
  t.equal(health.json().error.code, 'FEEGATE_ERR_SERVICE_UNAVAILABLE');
  t.equal((await env.app.inject('/livez')).statusCode, 200, '/livez: the process is alive');
  const metrics = await env.app.inject('/metrics');
  t.equal(metrics.statusCode, 200, '/metrics still renders, to watch the outage');
  t.match(metrics.body, /feegate_scrape_hook_failures_total 1\b/, 'and counts the gauges it could not refresh');

  if (restore) {
    await restore();
    t.equal((await env.app.inject('/healthz')).statusCode, 200, 'back: ready again');
    t.equal((await api.get('/v1/bills')).status, 200, 'back: the API answers with fresh connections');
  }
});

t.test('a knex pool pointed at a dead port: 503, not 500', async (t) => {
  const db = createDb({ url: `postgres://postgres@127.0.0.1:${await freePort()}/nothing`, poolMax: 2 });
  t.teardown(() => db.destroy());
  const env = await makeApp(db);
  t.teardown(env.close);
  const r = await client(env.app, 'fg_test_' + 'a'.repeat(32)).get('/v1/tenant');
  t.equal(r.status, 503);
  t.equal(r.body.error.code, 'FEEGATE_ERR_SERVICE_UNAVAILABLE');
  t.ok(r.headers['retry-after']);
  t.equal((await env.app.inject('/healthz')).statusCode, 503);
  t.equal((await env.app.inject('/livez')).statusCode, 200);
});

t.test('a pool that cannot hand out a connection in time: 503', async (t) => {
  if (!(await postgresAvailable())) {
    t.plan(0, 'skip: PostgreSQL not reachable');
    return;
  }
  const makeKnex = (knexPkg as unknown as { knex?: typeof knexPkg }).knex ?? knexPkg;
  const db = makeKnex({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 300 });
  t.teardown(() => db.destroy());
  let release!: () => void;
  const held = db.transaction(async (trx) => {
    await trx.raw('select 1');
    await new Promise<void>((r) => (release = r));
  });
  await new Promise((r) => setTimeout(r, 100));
  const err = await db.raw('select 1').then(
    () => null,
    (e: unknown) => e,
  );
  t.equal((err as Error | null)?.name, 'KnexTimeoutError', 'the pool timed out');
  t.ok(isDatabaseUnavailable(err), 'and that is an outage');
  const env = await makeApp(db);
  t.teardown(env.close);
  const r = await client(env.app, 'fg_test_' + 'b'.repeat(32)).get('/v1/tenant');
  t.equal(r.status, 503);
  t.equal(r.body.error.code, 'FEEGATE_ERR_SERVICE_UNAVAILABLE');
  release();
  await held;
});

t.test('errors that are not outages stay 500-class bugs', async (t) => {
  t.notOk(isDatabaseUnavailable(Object.assign(new Error('syntax error at or near "selec"'), { code: '42601' })));
  t.notOk(isDatabaseUnavailable(Object.assign(new Error('duplicate key value'), { code: '23505' })));
  t.notOk(isDatabaseUnavailable(Object.assign(new Error('cannot do that now'), { code: '55000' })), 'a 55000 that is not about connections');
  t.notOk(isDatabaseUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')")));
  t.notOk(isDatabaseUnavailable(undefined));
});

eachDb(
  'X-Request-Id: a plain token is kept, anything else is replaced by a fresh id',
  async (t, { db }) => {
    const logs: string[] = [];
    const env = await makeApp(db, {}, undefined, { logger: { level: 'info', stream: { write: (line: string) => void logs.push(line) } } });
    t.teardown(env.close);
    const ten = await seedTenant(db, env.clock);
    const api = client(env.app, ten.keys.integration);
    const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

    for (const kept of ['req-123', 'trace.id:01_HZ-9', 'x'.repeat(128)]) {
      t.equal((await api.get('/v1/tenant', { 'x-request-id': kept })).headers['x-request-id'], kept, `kept: ${kept.slice(0, 20)}`);
    }
    const hostile: Record<string, string> = {
      CRLF: 'abc\r\nset-cookie: session=evil',
      LF: 'abc\n{"level":60,"msg":"forged log line"}',
      NUL: 'abc\u0000def',
      '10 KB': 'a'.repeat(10 * 1024),
      '129 chars': 'b'.repeat(129),
      unicode: 'yêu-cầu-😀',
      spaces: 'a b',
      empty: '',
      'quote and brace': 'a"}{"b',
    };
    for (const [what, value] of Object.entries(hostile)) {
      const r = await env.app.inject({ method: 'GET', url: '/v1/tenant', headers: { authorization: `Bearer ${ten.keys.integration}`, 'x-request-id': value } });
      t.equal(r.statusCode, 200, `${what}: the request itself is served`);
      t.match(String(r.headers['x-request-id']), UUID, `${what}: a fresh id is used instead`);
      t.notOk('set-cookie' in r.headers, `${what}: no header was injected`);
    }

    // Over a real socket too: the bytes as a client sends them (UTF-8 arrives as latin1 in Node).
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (env.app.server.address() as net.AddressInfo).port;
    for (const value of [Buffer.from('yêu-cầu-😀', 'utf8').toString('latin1'), 'c'.repeat(10 * 1024)]) {
      const head = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.write(Buffer.from(`GET /livez HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${value}\r\nConnection: close\r\n\r\n`, 'latin1'));
        });
        let got = '';
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
      t.match(head, /^HTTP\/1\.1 200/, 'served');
      t.match(/^x-request-id: (.*)$/im.exec(head)?.[1]?.trim() ?? '', UUID, 'a fresh id on the wire');
    }

    const ids = logs.map((l) => (JSON.parse(l) as { reqId?: string }).reqId).filter((id) => id !== undefined);
    t.ok(ids.length > 0, 'requests were logged');
    t.same(
      ids.filter((id) => !/^[A-Za-z0-9._:-]{1,128}$/.test(id)),
      [],
      'every logged request id is a plain token',
    );
  },
  { engines: ['pglite'] },
); // HTTP only: the engine plays no part

const PROD = { mode: 'production', sandbox: false, databaseUrl: 'postgres://unused.invalid/x' } as const;
const TOKEN = 'metrics-token-for-tests-only-0123456789';

eachDb(
  '/metrics: public in development, closed in production unless a token or its own address',
  async (t, { db }) => {
    const dev = await makeApp(db);
    t.teardown(dev.close);
    t.equal((await dev.app.inject('/metrics')).statusCode, 200, 'development: public, as before');

    const off = await makeApp(db, PROD);
    t.teardown(off.close);
    const offAnswer = await off.app.inject('/metrics');
    t.equal(offAnswer.statusCode, 404, 'production with neither setting: /metrics is off');
    t.notMatch(offAnswer.body, /feegate_/, 'and shows nothing');
    t.notOk((await off.app.inject('/openapi.json')).json().paths['/metrics'], 'nor is it documented');
    t.equal((await off.app.inject('/livez')).statusCode, 200, 'the rest is up');

    const tok = await makeApp(db, { ...PROD, metricsToken: TOKEN });
    t.teardown(tok.close);
    const scrape = (headers: Record<string, string>) => tok.app.inject({ method: 'GET', url: '/metrics', headers });
    const none = await scrape({});
    t.equal(none.statusCode, 401, 'token: none given');
    t.equal(none.json().error.code, 'FEEGATE_ERR_AUTH_MISSING');
    t.match(String(none.headers['www-authenticate']), /^Bearer/);
    for (const [what, value] of [
      ['wrong, same length', `Bearer ${TOKEN.slice(0, -1)}X`],
      ['a prefix', `Bearer ${TOKEN.slice(0, 16)}`],
      ['longer', `Bearer ${TOKEN}0`],
      ['not bearer', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`],
      ['an API key', 'Bearer fg_test_' + 'a'.repeat(32)],
    ]) {
      const r = await scrape({ authorization: value! });
      t.equal(r.statusCode, 401, `token: ${what} is refused`);
      t.notMatch(r.body, /feegate_http/, `token: ${what} shows nothing`);
    }
    const ok = await scrape({ authorization: `Bearer ${TOKEN}` });
    t.equal(ok.statusCode, 200, 'token: the right one');
    t.match(ok.body, /feegate_http_request_duration_seconds/);

    const devTok = await makeApp(db, { metricsToken: TOKEN });
    t.teardown(devTok.close);
    t.equal((await devTok.app.inject('/metrics')).statusCode, 401, 'a configured token is required in development too');
  },
  { engines: ['pglite'] },
); // HTTP only: the engine plays no part

eachDb(
  '/metrics on its own address: a second server with /metrics only',
  async (t, { db }) => {
    const { buildMetricsServer } = await import('../gateway/http/metrics.js');
    const port = await freePort();
    for (const token of [undefined, TOKEN]) {
      const env = await makeApp(db, { ...PROD, metricsListen: { host: '127.0.0.1', port }, metricsToken: token });
      const server = await buildMetricsServer(env.app.deps.metrics, env.app.deps.config, env.app.log);
      await server.listen({ host: '127.0.0.1', port });
      t.teardown(async () => {
        await server.close();
        await env.close();
      });
      t.equal((await env.app.inject('/metrics')).statusCode, 404, 'the API server does not serve /metrics');
      await env.app.inject('/livez');
      const base = `http://127.0.0.1:${port}`;
      const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      const r = await fetch(`${base}/metrics`, { headers: auth });
      t.equal(r.status, 200, `its own address serves it${token ? ' (with the token)' : ''}`);
      t.match(await r.text(), /feegate_http_request_duration_seconds_count\{method="GET",route="\/livez",status="200"\} 1/, "the API server's metrics");
      for (const other of ['/livez', '/healthz', '/v1/tenant', '/openapi.json', '/docs/']) {
        t.equal((await fetch(base + other, { headers: auth })).status, 404, `${other} is not served there`);
      }
      if (token) t.equal((await fetch(`${base}/metrics`)).status, 401, 'with a token set, it is needed there too');
      await server.close();
      await env.close();
    }
  },
  { engines: ['pglite'] },
);

t.test('configuration: metrics token and address', async (t) => {
  const base = { FEEGATE_MODE: 'production', DATABASE_URL: 'postgres://x/y', FEEGATE_MASTER_KEY: 'A'.repeat(43) + '=' };
  t.equal(loadConfig({ ...base, FEEGATE_METRICS_TOKEN: TOKEN }).metricsToken, TOKEN);
  t.throws(() => loadConfig({ ...base, FEEGATE_METRICS_TOKEN: 'short' }), /FEEGATE_METRICS_TOKEN must be/);
  t.throws(() => loadConfig({ ...base, FEEGATE_METRICS_TOKEN: 'has a space in it ok?' }), /FEEGATE_METRICS_TOKEN must be/);
  t.same(loadConfig({ ...base, FEEGATE_METRICS_LISTEN: '9464' }).metricsListen, { host: '127.0.0.1', port: 9464 }, 'a bare port is loopback only');
  t.same(loadConfig({ ...base, FEEGATE_METRICS_LISTEN: '10.0.0.5:9464' }).metricsListen, { host: '10.0.0.5', port: 9464 });
  t.same(loadConfig({ ...base, FEEGATE_METRICS_LISTEN: '[::1]:9464' }).metricsListen, { host: '::1', port: 9464 });
  for (const bad of ['0', '70000', 'host:', ':9464', 'http://x:9464', '1.2.3.4:9464/metrics']) {
    t.throws(() => loadConfig({ ...base, FEEGATE_METRICS_LISTEN: bad }), /FEEGATE_METRICS_LISTEN must be/, `refused: ${bad}`);
  }
});

t.test('start-up before the database: the gateway waits, retrying with a log line each try', async (t) => {
  if (!(await postgresAvailable())) {
    t.plan(0, 'skip: PostgreSQL not reachable');
    return;
  }
  const { spawn } = await import('node:child_process');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const pgAt = new URL(PG_URL);
  // PostgreSQL "comes up later" on this port: a TCP relay to the real server, opened mid-test.
  const dbPort = await freePort();
  const name = `feegate_test_late_${process.pid}_${Date.now()}`;
  const url = new URL(PG_URL);
  url.port = String(dbPort);
  url.pathname = `/${name}`;
  const [port, metricsPort] = [await freePort(), await freePort()];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-late-db-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/server.ts'], {
    cwd: path.resolve(import.meta.dirname, '..'),
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      PORT: String(port),
      FEEGATE_DATA_DIR: dataDir,
      DATABASE_URL: url.toString(),
      FEEGATE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      FEEGATE_JOBS: 'false',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const waitFor = async (re: RegExp, what: string, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!re.test(out)) {
      if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}) waiting for ${what}:\n${out}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const tries = () => out.match(/database not ready \(attempt \d+/g)?.length ?? 0;

  await waitFor(/database not ready \(attempt 2, ECONNREFUSED[^)]*\); retrying in [0-9.]+ s/, 'two refused connections');
  t.pass('nothing listens on the port: it retries, a line each try');

  const relay = net.createServer((sock) => {
    const up = net.connect(Number(pgAt.port || 5432), pgAt.hostname);
    sock.pipe(up).pipe(sock);
    sock.on('error', () => up.destroy());
    up.on('error', () => sock.destroy());
  });
  await new Promise<void>((r) => relay.listen(dbPort, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => relay.close(() => r())));
  await waitFor(/database not ready \(attempt \d+, 3D000/, 'PostgreSQL up, the database not created yet');
  t.pass('PostgreSQL answers but the database does not exist yet: it keeps waiting');

  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  t.teardown(() => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)));
  await waitFor(/is listening on/, 'the gateway to listen');
  t.ok(tries() >= 3, `it tried ${tries()} times before the database was there`);
  const delays = [...out.matchAll(/retrying in ([0-9.]+) s/g)].map((m) => Number(m[1]));
  t.ok(delays[1]! > delays[0]!, `the wait grows (${delays.join(', ')} s)`);

  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'then it is ready');
  const direct = new URL(PG_URL);
  direct.pathname = `/${name}`;
  const c = new pg.Client({ connectionString: direct.toString() });
  await c.connect();
  const migrated = await c.query('SELECT count(*)::int AS n FROM knex_migrations');
  await c.end();
  t.ok(migrated.rows[0].n > 0, 'with its migrations applied');
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404, 'FEEGATE_METRICS_LISTEN: not on the API port');
  t.match(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), /feegate_http_request_duration_seconds/, 'but on its own');
  t.match(out, new RegExp(`Metrics: http://127.0.0.1:${metricsPort}/metrics \\(its own address\\)`), 'the banner says where');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'and it stops cleanly');
});
