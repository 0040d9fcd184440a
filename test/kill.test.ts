/** The kill test (test/kill/kill-test.ts) with a modest count; run it by hand with a large one. */
import t from 'tap';
import { PG_URL, postgresAvailable } from './helpers/db.js';
import { runKillTest } from './kill/kill-test.js';

t.test('kill -9 during payments: nothing lost, nothing doubled', async (t) => {
  if (!(await postgresAvailable())) {
    if (process.env.CI === 'true') t.fail(`PostgreSQL is not reachable at ${PG_URL} (CI=true)`);
    else t.plan(0, 'skip: PostgreSQL not reachable');
    return;
  }
  const r = await runKillTest({ payments: 30, kills: 3, concurrency: 4, pgUrl: PG_URL, log: (l) => t.comment(l) });
  t.equal(r.payments, 30, 'every payment was created (retries with the same Idempotency-Key)');
  t.ok(r.kills === 3, 'the gateway was killed 3 times');
  t.ok(r.paidAtProvider > 0, `${r.paidAtProvider} paid at the provider`);
  t.equal(r.succeeded, r.paidAtProvider, 'succeeded payments equal provider-paid orders');
  t.equal(r.receipts, r.succeeded, 'one e-receipt per succeeded payment');
  t.same(r.problems, [], 'no payment lost or doubled, books and chain valid, receipts gapless, every event delivered');
  t.equal(r.eventsDelivered, r.events);
});
