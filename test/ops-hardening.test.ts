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
  return () => admin(async (c) => { await c.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`); });
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
  const makeKnex = ((knexPkg as unknown as { knex?: typeof knexPkg }).knex ?? knexPkg);
  const db = makeKnex({ client: 'pg', connection: PG_URL, pool: { min: 0, max: 1 }, acquireConnectionTimeout: 300 });
  t.teardown(() => db.destroy());
  let release!: () => void;
  const held = db.transaction(async (trx) => {
    await trx.raw('select 1');
    await new Promise<void>((r) => (release = r));
  });
  await new Promise((r) => setTimeout(r, 100));
  const err = await db.raw('select 1').then(() => null, (e: unknown) => e);
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

eachDb('X-Request-Id: a plain token is kept, anything else is replaced by a fresh id', async (t, { db }) => {
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
    'CRLF': 'abc\r\nset-cookie: session=evil',
    'LF': 'abc\n{"level":60,"msg":"forged log line"}',
    'NUL': 'abc\u0000def',
    '10 KB': 'a'.repeat(10 * 1024),
    '129 chars': 'b'.repeat(129),
    'unicode': 'yêu-cầu-😀',
    'spaces': 'a b',
    'empty': '',
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
  t.same(ids.filter((id) => !/^[A-Za-z0-9._:-]{1,128}$/.test(id)), [], 'every logged request id is a plain token');
});
