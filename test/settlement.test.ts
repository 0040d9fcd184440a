import t from 'tap';
import { eachDb } from './helpers/db.js';
import { billAndPayment, makeApp, payAt, seedTenant } from './helpers/app.js';
import { sandboxAdapter } from '../adapters/sandbox/adapter.js';
import { vnpayAdapter } from '../adapters/vnpay/adapter.js';
import { momoAdapter } from '../adapters/momo/adapter.js';
import { zalopayAdapter } from '../adapters/zalopay/adapter.js';

eachDb(
  'sandbox settlement report parses into common settlement lines',
  async (t, { db }) => {
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
  },
  { engines: ['pglite'] },
);

t.test('a malformed settlement report is refused with the line number', async (t) => {
  const head = 'txn_id,reference,amount,fee,paid_at,status\n';
  t.throws(() => sandboxAdapter.parseSettlement(head + 'T1,FG1,12.5,0,2026-03-10T02:00:00Z,SUCCESS\n'), /line 2 is malformed/);
  t.throws(() => sandboxAdapter.parseSettlement(head + 'T1,FG1,100,0,yesterday,SUCCESS\n'), /line 2 is malformed/);
  t.throws(() => sandboxAdapter.parseSettlement(head + 'T1,FG1,100,0,2026-03-10T02:00:00Z,MAYBE\n'), /line 2 is malformed/);
  t.throws(() => sandboxAdapter.parseSettlement(head + '"T1,FG1,100\n'), /quote|Quote|malformed|Invalid/);
  t.same(sandboxAdapter.parseSettlement(head), []);
});

t.test('each provider report layout parses into the common lines, and a bad line is named', async (t) => {
  const vn = vnpayAdapter.parseSettlement('TxnRef,TransactionNo,Amount,Fee,PayDate,Status\nFG1,14422574,58000,580,20260310090000,00\n');
  t.same(
    vn,
    [{ providerRef: '14422574', ourRef: 'FG1', amount: 58000, fee: 580, occurredAt: new Date('2026-03-10T02:00:00Z'), status: 'succeeded' }],
    'VNPay: PayDate is GMT+7',
  );
  t.throws(() => vnpayAdapter.parseSettlement('TxnRef,TransactionNo,Amount,Fee,PayDate,Status\nFG1,1,58000,0,2026-03-10,00\n'), /line 2 is malformed/);
  const momo = momoAdapter.parseSettlement('orderId,transId,amount,fee,responseTime,resultCode\nFG2,4088878653,58000,0,1773108000000,0\n');
  t.same(momo, [{ providerRef: '4088878653', ourRef: 'FG2', amount: 58000, fee: 0, occurredAt: new Date(1773108000000), status: 'succeeded' }]);
  t.throws(
    () => momoAdapter.parseSettlement('orderId,transId,amount,fee,responseTime,resultCode\nFG2,1,,0,1773108000000,0\n'),
    /line 2 is malformed/,
    'an empty amount is not zero',
  );
  const zp = zalopayAdapter.parseSettlement('app_trans_id,zp_trans_id,amount,fee,server_time,status\n260310_FG3,260000000001,58000,100,1773108000000,1\n');
  t.same(
    zp,
    [{ providerRef: '260000000001', ourRef: 'FG3', amount: 58000, fee: 100, occurredAt: new Date(1773108000000), status: 'succeeded' }],
    'our reference without the date prefix',
  );
  t.throws(
    () => zalopayAdapter.parseSettlement('app_trans_id,zp_trans_id,amount,fee,server_time,status\nFG3,1,58000,0,1773108000000,1\n'),
    /line 2 is malformed/,
  );
});
