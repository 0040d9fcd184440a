import t from 'tap';
import { eachDb } from './helpers/db.js';
import { billAndPayment, makeApp, payAt, seedTenant } from './helpers/app.js';
import { sandboxAdapter } from '../adapters/sandbox/adapter.js';

eachDb('sandbox settlement report parses into common settlement lines', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const paid = (await billAndPayment(env.app, ten.keys.integration)).payment;
  const failed = (await billAndPayment(env.app, ten.keys.integration)).payment;
  await payAt(env.sim, paid, 'success');
  await payAt(env.sim, failed, 'fail');
  const csv = (await env.app.inject('/sandbox/control/settlement.csv')).body;
  const lines = sandboxAdapter.parseSettlement(csv);
  t.equal(lines.length, 1, 'only money that moved is settled');
  t.match(lines[0], { ourRef: paid.reference, providerRef: env.sim.orders.get(paid.reference)!.txnId, amount: 58_000, fee: 580, status: 'succeeded' });
  t.equal(lines[0]!.occurredAt.toISOString(), env.clock.now().toISOString());
}, { engines: ['pglite'] });

t.test('a malformed settlement report is refused with the line number', async (t) => {
  const head = 'txn_id,reference,amount,fee,paid_at,status\n';
  t.throws(() => sandboxAdapter.parseSettlement(head + 'T1,FG1,12.5,0,2026-03-10T02:00:00Z,SUCCESS\n'), /line 2 is malformed/);
  t.throws(() => sandboxAdapter.parseSettlement(head + 'T1,FG1,100,0,yesterday,SUCCESS\n'), /line 2 is malformed/);
  t.throws(() => sandboxAdapter.parseSettlement(head + 'T1,FG1,100,0,2026-03-10T02:00:00Z,MAYBE\n'), /line 2 is malformed/);
  t.throws(() => sandboxAdapter.parseSettlement(head + '"T1,FG1,100\n'), /quote|Quote|malformed|Invalid/);
  t.same(sandboxAdapter.parseSettlement(head), []);
});
