/**
 * Issue 11, defect 5: provider messages are deduplicated per payment. A genuine, signed success
 * for a second order whose provider transaction number was seen before (a provider or simulator
 * restarted) is applied, not answered "already confirmed"; the collision is logged. And the
 * simulators' transaction numbers do not repeat after a restart.
 */
import { eachDb } from './helpers/db.js';
import { billInput, client, makeApp, seedTenant, type TestApp } from './helpers/app.js';
import { ManualClock } from '../gateway/clock.js';
import { secureHash, signData } from '../adapters/vnpay/protocol.js';

async function vnpayPaidLost(env: TestApp, key: string) {
  const api = client(env.app, key);
  const sim = env.app.simulators!.vnpay;
  const p = (await api.post('/v1/payments', { bill_id: (await api.post('/v1/bills', billInput())).body.id, provider: 'vnpay' })).body;
  sim.open(Object.fromEntries(new URL(p.checkout.url).searchParams));
  sim.orders.get(p.reference)!.knobs.delivery = 'lost';
  const order = (await sim.complete(p.reference, 'success'))!;
  const fields = Object.fromEntries(new URLSearchParams(sim.resultQuery(order)));
  delete fields.vnp_SecureHash;
  return { payment: p, fields };
}

eachDb('callback dedupe: two orders with the same provider transaction number are both applied, the collision logged', async (t, { db }) => {
  const logs: string[] = [];
  const env = await makeApp(db, {}, new ManualClock('2026-03-10T02:00:00Z'), {
    logger: {
      level: 'warn',
      stream: {
        write: (line: string) => {
          logs.push(line);
        },
      },
    },
  });
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const secret = `${env.app.deps.config.sandboxSecret}:vnpay`;
  const ipn = (f: Record<string, string>) => env.app.inject(`/v1/notify/vnpay?${signData(f)}&vnp_SecureHash=${secureHash(f, secret)}`);
  const a = await vnpayPaidLost(env, ten.keys.integration);
  const b = await vnpayPaidLost(env, ten.keys.integration);
  // VNPay restarted between the two payments and numbered the second as the first (genuinely signed).
  const bFields = { ...b.fields, vnp_TransactionNo: a.fields.vnp_TransactionNo!, vnp_BankTranNo: `VNP${a.fields.vnp_TransactionNo}` };
  t.equal((await ipn(a.fields)).json().RspCode, '00', 'the first order confirmed');
  t.equal((await ipn(bFields)).json().RspCode, '00', 'the second order, same transaction number: confirmed too');
  t.equal((await ipn(bFields)).json().RspCode, '02', 'its duplicate: already confirmed');
  t.equal((await ipn(a.fields)).json().RspCode, '02', "and the first's duplicate too");
  const rows = (await db('payments').whereIn('id', [a.payment.id, b.payment.id]).select('status', 'provider_txn_id')) as {
    status: string;
    provider_txn_id: string;
  }[];
  t.same(
    rows.map((r) => r.status),
    ['succeeded', 'succeeded'],
    'both applied',
  );
  t.same(
    rows.map((r) => r.provider_txn_id),
    [a.fields.vnp_TransactionNo, a.fields.vnp_TransactionNo],
  );
  t.equal(
    (await db('ledger_transfers').whereIn('payment_id', [a.payment.id, b.payment.id]).where({ kind: 'payment.succeeded' })).length,
    2,
    'each credited once',
  );
  t.equal((await db('provider_events').where({ provider: 'vnpay', provider_txn_id: a.fields.vnp_TransactionNo })).length, 2, 'one event per payment');
  const clash = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => /already seen for another payment/.test(String(l.msg)));
  t.equal(clash.length, 1, 'the collision is logged once');
  t.match(clash[0], { provider: 'vnpay', provider_txn_id: a.fields.vnp_TransactionNo, payment_id: b.payment.id, other_payment_id: a.payment.id });
});

eachDb('callback dedupe: after a restart the simulators do not reuse transaction numbers, and the next payment is applied at once', async (t, { db }) => {
  const clockAt = () => new ManualClock('2026-03-10T02:00:00Z'); // a restart puts the simulated clock at the same instant
  const numbers: Record<string, string>[] = [];
  for (let run = 0; run < 2; run++) {
    const env = await makeApp(db, {}, clockAt());
    const ten = await seedTenant(db, env.clock);
    const api = client(env.app, ten.keys.integration);
    const { vnpay, momo, zalopay } = env.app.simulators!;
    const pay = async (provider: string) => (await api.post('/v1/payments', { bill_id: (await api.post('/v1/bills', billInput())).body.id, provider })).body;
    const v = await pay('vnpay');
    vnpay.open(Object.fromEntries(new URL(v.checkout.url).searchParams));
    const vo = (await vnpay.complete(v.reference, 'success'))!;
    const m = await pay('momo');
    const mo = (await momo.complete(m.reference, 'success'))!;
    const z = await pay('zalopay');
    const zid = [...zalopay.orders.keys()].find((k) => k.endsWith(`_${z.reference}`))!;
    const zo = (await zalopay.complete(zid, 'success'))!;
    t.same(
      vo.ipnAnswers.map((x) => JSON.parse(x).RspCode),
      ['00'],
      `run ${run}: VNPay IPN confirmed at once`,
    );
    t.same(mo.ipnStatuses, [204], `run ${run}: MoMo IPN confirmed at once`);
    t.same(
      zo.callbackAnswers.map((x) => JSON.parse(x).return_code),
      [1],
      `run ${run}: ZaloPay callback confirmed at once`,
    );
    const statuses = (await db('payments').whereIn('id', [v.id, m.id, z.id]).pluck('status')) as string[];
    t.same(statuses, ['succeeded', 'succeeded', 'succeeded'], `run ${run}: all three succeeded without waiting for the janitor`);
    numbers.push({ vnpay: vo.transactionNo, momo: String(mo.transId), zalopay: String(zo.zpTransId) });
    await env.close();
  }
  for (const p of ['vnpay', 'momo', 'zalopay']) {
    t.not(numbers[1]![p], numbers[0]![p], `${p}: the restarted simulator gave a new transaction number`);
    t.ok(BigInt(numbers[1]![p]!) > BigInt(numbers[0]![p]!), `${p}: numbers only grow`);
    t.ok(/^[1-9][0-9]{0,14}$/.test(numbers[1]![p]!), `${p}: digits, at most 15, as the provider's numbers`);
  }
});
