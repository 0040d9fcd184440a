/**
 * Cache coherence across processes, in-process: two resolvers with their own change feeds on one
 * database stand for two gateway processes. And the domain rule that a key mints no role above its own.
 */
import { ManualClock } from '../gateway/clock.js';
import { ChangeFeed } from '../gateway/db/notify.js';
import { ApiKeyResolver, createApiKey, revokeApiKey } from '../gateway/tenants/api-keys.js';
import { FeegateError } from '../gateway/errors.js';
import { seedTenant } from './helpers/app.js';
import { eachDb } from './helpers/db.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: () => boolean, ms = 5_000) => {
  for (const end = Date.now() + ms; !what() && Date.now() < end;) await sleep(20);
  return what();
};
const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof FeegateError ? e.code : String(e)),
  );

eachDb('a key mints no role above its own, and a revoked key mints nothing', async (t, { db }) => {
  const clock = new ManualClock('2026-03-10T02:00:00Z');
  const seeded = await seedTenant(db, clock);
  const resolver = new ApiKeyResolver(db);
  const finance = (await resolver.resolve(seeded.keys.finance))!;
  const admin = (await resolver.resolve(seeded.keys.admin))!;
  const mint = (creator: string, role: 'integration' | 'finance' | 'admin') =>
    code(db.transaction((trx) => createApiKey(trx, clock, { tenantId: seeded.tenantId, role, mode: 'test', actor: 'test', creator: { keyId: creator } })));
  t.equal(await mint(finance.keyId, 'admin'), 'FEEGATE_ERR_FORBIDDEN_ROLE', 'finance cannot mint admin');
  t.equal(await mint(finance.keyId, 'finance'), 'ok');
  t.equal(await mint(finance.keyId, 'integration'), 'ok');
  t.equal(await mint(admin.keyId, 'admin'), 'ok');
  await db.transaction((trx) => revokeApiKey(trx, clock, seeded.tenantId, admin.keyId, 'test'));
  t.equal(await mint(admin.keyId, 'integration'), 'FEEGATE_ERR_AUTH_REVOKED', 'a revoked key mints nothing, whatever a cache says');
});

eachDb('a revocation reaches another process on commit, never on rollback', async (t, { db }) => {
  const clock = new ManualClock('2026-03-10T02:00:00Z');
  const seeded = await seedTenant(db, clock);
  const feeds = [new ChangeFeed({ db }), new ChangeFeed({ db })];
  t.teardown(() => Promise.all(feeds.map((f) => f.close())));
  await Promise.all(feeds.map((f) => f.start()));
  const [here, there] = feeds.map((f) => new ApiKeyResolver(db, f, 60_000)) as [ApiKeyResolver, ApiKeyResolver];
  const key = (await there.resolve(seeded.keys.admin))!;
  t.equal(key.revoked, false, 'the other process caches the key as valid (60 s TTL)');
  t.ok(
    feeds.every((f) => f.live),
    'both feeds listen',
  );
  // A change made behind the feed's back (no NOTIFY) is not seen: the cache really answers.
  await db.raw('update api_keys set revoked_at = now() where id = ?', [key.keyId]);
  t.equal((await there.resolve(seeded.keys.admin))!.revoked, false, 'served from the cache');
  await db.raw('update api_keys set revoked_at = null where id = ?', [key.keyId]);

  await db
    .transaction(async (trx) => {
      await revokeApiKey(trx, clock, seeded.tenantId, key.keyId, 'test');
      throw new Error('rolled back');
    })
    .catch(() => {});
  await sleep(100);
  t.equal((await there.resolve(seeded.keys.admin))!.revoked, false, 'a rolled-back revocation changes nothing');

  await db.transaction((trx) => revokeApiKey(trx, clock, seeded.tenantId, key.keyId, 'test'));
  let seen = false;
  for (const end = Date.now() + 1_000; !seen && Date.now() < end; await sleep(10)) seen = (await there.resolve(seeded.keys.admin))!.revoked;
  t.ok(seen, 'the other process refuses the key within 1 s, long before its TTL');
  t.equal((await here.resolve(seeded.keys.admin))!.revoked, true);
});

eachDb(
  'a lost LISTEN connection: caches are bypassed until it is back',
  async (t, { db }) => {
    const clock = new ManualClock('2026-03-10T02:00:00Z');
    const seeded = await seedTenant(db, clock);
    const feed = new ChangeFeed({ db });
    t.teardown(() => feed.close());
    await feed.start();
    const resolver = new ApiKeyResolver(db, feed, 60_000);
    const key = (await resolver.resolve(seeded.keys.admin))!;
    t.ok(feed.live, 'listening');
    // The listener's backend is killed (a failover, a restarted pgbouncer, a network cut).
    await db.raw(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'feegate-listen' and datname = current_database()`);
    t.ok(await until(() => !feed.live), 'the feed notices');
    // A revocation made while nobody listens: its NOTIFY is lost, the cache must not answer.
    await db.raw('update api_keys set revoked_at = now() where id = ?', [key.keyId]);
    t.equal((await resolver.resolve(seeded.keys.admin))!.revoked, true, 'read through while the feed is down');
    t.ok(await until(() => feed.live), 'and it reconnects');
  },
  { engines: ['postgres'] },
);
