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
