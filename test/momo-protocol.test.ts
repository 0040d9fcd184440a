/** MoMo signing recipes reproduce the reference's vectors (shared/docs/payment-protocols.md §2.7). */
import t from 'tap';
import { CREATE_KEYS, IPN_KEYS, QUERY_KEYS, momoOutcome, momoSign, momoVerify, rawString } from '../adapters/momo/protocol.js';

const KEY = 'K951B6PE1waDMi640xX08PD3vg6EkVlz';
const base = { accessKey: 'F8BBA842ECF85', partnerCode: 'MOMO', orderId: 'MOMO1700000000000', orderInfo: 'pay with MoMo', extraData: '' };

t.test('create, IPN and query signatures', async (t) => {
  const create = {
    ...base,
    amount: 50000,
    ipnUrl: 'https://callback.url/notify',
    redirectUrl: 'https://momo.vn/return',
    requestId: 'MOMO1700000000000',
    requestType: 'captureWallet',
  };
  t.equal(
    rawString(create, CREATE_KEYS),
    'accessKey=F8BBA842ECF85&amount=50000&extraData=&ipnUrl=https://callback.url/notify&orderId=MOMO1700000000000&orderInfo=pay with MoMo&partnerCode=MOMO&redirectUrl=https://momo.vn/return&requestId=MOMO1700000000000&requestType=captureWallet',
  );
  t.equal(momoSign(KEY, create, CREATE_KEYS), '4378bb95714712f6be833da81f743910a01e5ba6279bfe596b8a08e891259424');
  const ipn = {
    ...base,
    amount: 50000,
    message: 'Successful.',
    orderType: 'momo_wallet',
    payType: 'qr',
    requestId: 'MOMO1700000000000',
    responseTime: 1700000060000,
    resultCode: 0,
    transId: 4088878653,
  };
  t.equal(momoSign(KEY, ipn, IPN_KEYS), '3a8143fa6cd64cec9ad44da05c509ce972e73ee349287f48f08edd59327b2652');
  t.ok(momoVerify(KEY, { ...ipn, signature: '3a8143fa6cd64cec9ad44da05c509ce972e73ee349287f48f08edd59327b2652' }, IPN_KEYS));
  t.notOk(momoVerify(KEY, { ...ipn, amount: 50001, signature: '3a8143fa6cd64cec9ad44da05c509ce972e73ee349287f48f08edd59327b2652' }, IPN_KEYS));
  t.equal(momoSign(KEY, { ...base, requestId: 'MOMO1700000000001' }, QUERY_KEYS), 'a26066ed14201c6eba262240cd1472f31ffe9b8b7af1c7131791b9cef097464a');
});

t.test('result codes', async (t) => {
  t.equal(momoOutcome(0), 'succeeded');
  t.equal(momoOutcome(9000), 'pending', 'authorised is not captured');
  t.equal(momoOutcome(1006), 'cancelled');
  t.equal(momoOutcome(1001), 'failed');
  t.equal(momoOutcome(4242), 'unknown', 'never failed for a code we do not know');
});
