/**
 * Adapters are pure functions of stored inputs: the protocol fields a later query rebuilds come from
 * the payment row (CheckoutRequest.createdAt), never from the clock at the moment of the call. A
 * create that crosses Vietnam's midnight (and a second boundary) between the row and the call must
 * still be found by the status query after its callback was lost (issue 11, defect 3).
 */
import { eachDb } from './helpers/db.js';
import { makeApp } from './helpers/app.js';
import { ManualClock } from '../gateway/clock.js';
import { newReference } from '../gateway/payments/payments.js';

const ROW_CREATED = '2026-12-31T16:59:59.900Z'; // 23:59:59.9 on 31/12 in Vietnam
const CALL_DELAY_MS = 200; // the provider call happens at 00:00:00.1 on 1/1

eachDb('adapters: a create that crosses Vietnam midnight is still found by the status query', async (t, { db }) => {
  const clock = new ManualClock(ROW_CREATED);
  const env = await makeApp(db, {}, clock);
  t.teardown(env.close);
  const sims = env.app.simulators!;

  const request = (reference: string) => ({
    reference,
    amount: 58_000,
    currency: 'VND' as const,
    description: 'Le phi',
    returnUrl: 'https://feegate.test/v1/return/x',
    notifyUrl: 'https://feegate.test/v1/notify/x',
    createdAt: new Date(ROW_CREATED),
    expiresAt: new Date(new Date(ROW_CREATED).getTime() + 900_000),
  });

  // VNPay: a locally signed checkout; the payer pays; querydr names the order by vnp_TransactionDate.
  {
    clock.set(ROW_CREATED);
    clock.advance(CALL_DELAY_MS);
    const adapter = env.app.deps.providers.get('vnpay')!;
    const ctx = await env.app.deps.providers.context('vnpay', null);
    const req = request(newReference());
    const res = await adapter.createCheckout(ctx, req);
    t.equal(res.outcome, 'pending');
    const url = res.outcome === 'pending' ? res.checkout.url! : '';
    t.match(url, /vnp_CreateDate=20261231235959/, "vnp_CreateDate is the row's creation time (Vietnam), not the call's");
    const opened = sims.vnpay.open(Object.fromEntries(new URL(url).searchParams));
    t.ok(opened.ok, 'VNPay takes the checkout');
    await sims.vnpay.complete(req.reference, 'success');
    clock.advance(3600_000);
    const q = await adapter.queryStatus(ctx, { reference: req.reference, providerTxnId: null, amount: req.amount, createdAt: req.createdAt });
    t.equal(q.outcome, 'succeeded', 'VNPay: querydr from the stored creation time finds the paid order');
  }

  // ZaloPay: app_trans_id = yymmdd_<ref> of the stored creation time. ZaloPay only takes today's
  // prefix, so across midnight it refuses the create before anything is payable; never a payable
  // order whose query (rebuilt from created_at after a lost create answer) cannot find it.
  {
    clock.set(ROW_CREATED);
    clock.advance(CALL_DELAY_MS);
    const adapter = env.app.deps.providers.get('zalopay')!;
    const ctx = await env.app.deps.providers.context('zalopay', null);
    const req = request(newReference());
    const res = await adapter.createCheckout(ctx, req);
    const payable = [...sims.zalopay.orders.keys()].filter((k) => k.endsWith(`_${req.reference}`));
    if (res.outcome === 'pending') {
      t.same(payable, [`261231_${req.reference}`], 'the order carries the creation day');
      await sims.zalopay.complete(payable[0]!, 'success');
      const q = await adapter.queryStatus(ctx, { reference: req.reference, providerTxnId: null, amount: req.amount, createdAt: req.createdAt });
      t.equal(q.outcome, 'succeeded', 'ZaloPay: the query rebuilt from created_at finds it');
    } else {
      t.same(payable, [], `ZaloPay refused the create across midnight (${res.outcome}): nothing payable, nothing to lose`);
    }
    // The same create within the day: created, paid, and found by the rebuilt query.
    const sameDay = { ...request(newReference()), createdAt: new Date('2026-12-31T16:59:59.000Z') };
    clock.set('2026-12-31T16:59:59.500Z');
    const ok = await adapter.createCheckout(ctx, sameDay);
    t.equal(ok.outcome, 'pending');
    clock.advance(3600_000); // paid and asked about on 1/1
    await sims.zalopay.complete(`261231_${sameDay.reference}`, 'success');
    const q = await adapter.queryStatus(ctx, { reference: sameDay.reference, providerTxnId: null, amount: sameDay.amount, createdAt: sameDay.createdAt });
    t.equal(q.outcome, 'succeeded', 'ZaloPay: asked the next day, the query rebuilt from created_at finds it');
  }
});
