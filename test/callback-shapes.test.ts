/**
 * Every field of every provider message is checked for its documented shape before it is
 * believed, and a message dated beyond the clock-skew window is refused (issue 10), per adapter,
 * on genuinely signed messages (so the signature alone would have let each one through).
 */
import t from 'tap';
import { ManualClock } from '../gateway/clock.js';
import type { AdapterContext, InboundHttp, PaymentAdapter } from '../adapters/contract.js';
import { CLOCK_SKEW_MS, providerAmount, signableText } from '../adapters/adapter-kit.js';
import { momoAdapter } from '../adapters/momo/adapter.js';
import { IPN_KEYS, momoSign } from '../adapters/momo/protocol.js';
import { vnpayAdapter } from '../adapters/vnpay/adapter.js';
import { VNPAY_MAX_AMOUNT, fromVnpAmount, secureHash, toVnpAmount, vnpDate } from '../adapters/vnpay/protocol.js';
import { zalopayAdapter } from '../adapters/zalopay/adapter.js';
import { appTransId, zpMac } from '../adapters/zalopay/protocol.js';
import { paygovAdapter } from '../adapters/paygov/adapter.js';
import { pgSign, pgTime } from '../adapters/paygov/protocol.js';
import { sandboxAdapter } from '../adapters/sandbox/adapter.js';
import { SANDBOX_MERCHANT, withSignature } from '../adapters/sandbox/protocol.js';

const clock = new ManualClock('2026-03-10T02:00:00Z');
const now = () => clock.now();
const TEN_YEARS = 10 * 365 * 24 * 3600 * 1000;
const REF = 'FG0123456789ABCDEF0123';
const ctx = (credentials: Record<string, string>): AdapterContext => ({
  clock,
  credentials,
  publicUrl: 'http://feegate.test',
  http: { request: () => Promise.reject(new Error('no network')) },
});
const post = (body: unknown): InboundHttp => ({ method: 'POST', query: {}, headers: {}, rawBody: JSON.stringify(body) });
const get = (query: Record<string, string>): InboundHttp => ({ method: 'GET', query, headers: {}, rawBody: '' });

/** Each case: a message signed by the provider's key, and whether (and why) it must be refused. */
type Case = [name: string, msg: InboundHttp, refused: false | 'malformed' | 'stale' | 'signature'];
function check(tt: Tap, adapter: PaymentAdapter, c: AdapterContext, cases: Case[]) {
  for (const [name, msg, refused] of cases) {
    const r = msg.method === 'GET' && adapter.notifyMethod === 'POST' ? adapter.verifyReturn(c, msg) : adapter.verifyNotification(c, msg);
    if (refused === false) tt.ok(r.ok, `${adapter.id}: ${name}: believed`);
    else tt.match(r, { ok: false, reason: refused }, `${adapter.id}: ${name}: refused (${refused})`);
  }
}
type Tap = { ok(v: unknown, m: string): void; match(a: unknown, b: unknown, m: string): void };

t.test('MoMo', async (tt) => {
  const creds = {
    partner_code: 'FGSANDBOXMOMO',
    access_key: 'ak-test-fixture',
    secret_key: 'sk-test-fixture-0123456789abcdef',
    endpoint: 'http://momo.invalid',
  };
  const base: Record<string, unknown> = {
    partnerCode: creds.partner_code,
    orderId: REF,
    requestId: REF,
    amount: 58_000,
    orderInfo: 'Le phi ho tich',
    orderType: 'momo_wallet',
    transId: 4088000001,
    resultCode: 0,
    message: 'Successful.',
    payType: 'qr',
    responseTime: now().getTime(),
    extraData: '',
  };
  const ipn = (o: Record<string, unknown>) => {
    const f = { ...base, ...o };
    return post({ ...f, signature: momoSign(creds.secret_key, { ...f, accessKey: creds.access_key }, IPN_KEYS) });
  };
  check(tt, momoAdapter, ctx(creds), [
    ['genuine', ipn({}), false],
    ['dated within the skew window', ipn({ responseTime: now().getTime() + CLOCK_SKEW_MS - 1000 }), false],
    ['dated 10 years ahead', ipn({ responseTime: now().getTime() + TEN_YEARS }), 'stale'],
    ['transId not digits', ipn({ transId: 'q&resultCode=0' }), 'malformed'],
    ['resultCode not digits', ipn({ resultCode: '0x' }), 'malformed'],
    ['responseTime not digits', ipn({ responseTime: 'w' }), 'malformed'],
    ['orderType outside the documented set', ipn({ orderType: 'x' }), 'malformed'],
    ['payType outside the documented set', ipn({ payType: 'y' }), 'malformed'],
    ['requestId not the one we sent', ipn({ requestId: 'z' }), 'malformed'],
    ['extraData not the one we sent', ipn({ extraData: 'eyJ9' }), 'malformed'],
    ['orderInfo with separators', ipn({ orderInfo: 'Z&orderType=x' }), 'malformed'],
    ['amount with a fraction', ipn({ amount: 58000.5 }), 'malformed'],
    ["amount above MoMo's limit", ipn({ amount: 50_000_001 }), 'malformed'],
    ['another partner', ipn({ partnerCode: 'OTHER' }), 'signature'],
  ]);
});

t.test('VNPay', async (tt) => {
  const creds = { tmn_code: 'FGTEST01', hash_secret: 'vnpay-test-fixture-secret', pay_url: 'http://vnpay.invalid', api_url: 'http://vnpay.invalid' };
  const base: Record<string, string> = {
    vnp_Amount: '5800000',
    vnp_BankCode: 'NCB',
    vnp_CardType: 'ATM',
    vnp_OrderInfo: 'Le phi',
    vnp_PayDate: vnpDate(now()),
    vnp_ResponseCode: '00',
    vnp_TmnCode: creds.tmn_code,
    vnp_TransactionNo: '14000001',
    vnp_TransactionStatus: '00',
    vnp_TxnRef: REF,
  };
  const ipn = (o: Record<string, string>) => {
    const p = { ...base, ...o };
    return get({ ...p, vnp_SecureHash: secureHash(p, creds.hash_secret) });
  };
  check(tt, vnpayAdapter, ctx(creds), [
    ['genuine', ipn({}), false],
    ['dated within the skew window', ipn({ vnp_PayDate: vnpDate(new Date(now().getTime() + 60_000)) }), false],
    ['dated 10 years ahead', ipn({ vnp_PayDate: vnpDate(new Date(now().getTime() + TEN_YEARS)) }), 'stale'],
    ['no vnp_PayDate', ipn({ vnp_PayDate: '' }), 'malformed'],
    ['a response code VNPay does not document', ipn({ vnp_ResponseCode: '0' }), 'malformed'],
    ['a transaction status VNPay does not document', ipn({ vnp_TransactionStatus: '42' }), 'malformed'],
    ['vnp_TransactionNo not digits', ipn({ vnp_TransactionNo: '1a' }), 'malformed'],
    ['a field VNPay does not send', ipn({ vnp_Extra: '1' }), 'malformed'],
    ['vnp_Amount above what x100 can carry', ipn({ vnp_Amount: '9007199254741000' }), 'malformed'],
    ['another terminal', ipn({ vnp_TmnCode: 'OTHER' }), 'signature'],
  ]);
});

t.test('VNPay amounts travel as bigint strings', async (tt) => {
  tt.equal(toVnpAmount(VNPAY_MAX_AMOUNT), '9007199254740900');
  tt.equal(fromVnpAmount(toVnpAmount(VNPAY_MAX_AMOUNT)), VNPAY_MAX_AMOUNT, 'the maximum round-trips exactly');
  tt.equal(fromVnpAmount('9007199254741000'), undefined, 'one VND above is refused, not rounded');
  tt.equal(fromVnpAmount('900719925474099300'), undefined, 'nor read through Number (where it would look whole)');
  tt.equal(fromVnpAmount('5800001'), undefined, 'not a whole VND');
  tt.equal(providerAmount('12345678901234567890', 10 ** 15), undefined);
  tt.equal(providerAmount(1e21, 10 ** 15), undefined);
  tt.equal(providerAmount('058000', 10 ** 15), undefined, 'no leading zeros');
});

t.test('ZaloPay', async (tt) => {
  const creds = { app_id: '2554', key1: 'zp-key1-test-fixture', key2: 'zp-key2-test-fixture', endpoint: 'http://zalopay.invalid' };
  const base: Record<string, unknown> = {
    app_id: 2554,
    app_trans_id: appTransId(now(), REF),
    app_time: now().getTime(),
    app_user: 'feegate',
    amount: 58_000,
    embed_data: JSON.stringify({ redirecturl: 'http://feegate.test/v1/return/zalopay' }),
    item: '[]',
    zp_trans_id: 260000000001,
    server_time: now().getTime(),
    channel: 38,
    merchant_user_id: 'sim',
    user_fee_amount: 0,
    discount_amount: 0,
  };
  const cb = (o: Record<string, unknown>) => {
    const data = JSON.stringify({ ...base, ...o });
    return post({ data, mac: zpMac(creds.key2, [data]), type: 1 });
  };
  const back = (parts: string[]) =>
    get({
      appid: parts[0]!,
      apptransid: parts[1]!,
      pmcid: parts[2]!,
      bankcode: parts[3]!,
      amount: parts[4]!,
      discountamount: parts[5]!,
      status: parts[6]!,
      checksum: zpMac(creds.key2, parts),
    });
  check(tt, zalopayAdapter, ctx(creds), [
    ['genuine', cb({}), false],
    ['dated within the skew window', cb({ server_time: now().getTime() + 60_000 }), false],
    ['dated 10 years ahead', cb({ server_time: now().getTime() + TEN_YEARS }), 'stale'],
    ['zp_trans_id not digits', cb({ zp_trans_id: '26x' }), 'malformed'],
    ['app_user not ours', cb({ app_user: 'someone' }), 'malformed'],
    ['item not what we sent', cb({ item: '[{"a":1}]' }), 'malformed'],
    ['embed_data with more than our redirect URL', cb({ embed_data: '{"redirecturl":"x","promo":1}' }), 'malformed'],
    ['amount a string with a sign', cb({ amount: '-58000' }), 'malformed'],
    ['another app', cb({ app_id: 1 }), 'signature'],
    ['a genuine return', back(['2554', appTransId(now(), REF), '38', 'zalopayapp', '58000', '0', '1']), false],
    ['a return with a pipe in bankcode', back(['2554', appTransId(now(), REF), '38', 'zalo|1', '58000', '0', '1']), 'malformed'],
  ]);
});

t.test('PayGov', async (tt) => {
  const creds = { partner_code: 'FG-SANDBOX-DVC', secret: 'paygov-test-fixture-secret', endpoint: 'http://paygov.invalid' };
  const base: Record<string, unknown> = {
    partnerCode: creds.partner_code,
    orderId: REF,
    transactionId: 'PG20260310090000000001',
    amount: 58_000,
    status: 'SUCCESS',
    bankCode: 'VCB',
    paidAt: pgTime(now()),
    timestamp: pgTime(now()),
  };
  const n = (o: Record<string, unknown>) => post(pgSign(creds.secret, { ...base, ...o }));
  check(tt, paygovAdapter, ctx(creds), [
    ['genuine', n({}), false],
    ['dated within the skew window', n({ timestamp: pgTime(new Date(now().getTime() + 60_000)) }), false],
    ['dated 10 years ahead', n({ timestamp: pgTime(new Date(now().getTime() + TEN_YEARS)) }), 'stale'],
    ['a status PayGov does not document', n({ status: 'PAID' }), 'malformed'],
    ['a field PayGov does not send', n({ status2: 'SUCCESS' }), 'malformed'],
    ['a nested value', n({ bankCode: { a: 1 } }), 'malformed'],
    ['bankCode with separators', n({ bankCode: 'VCB&status=SUCCESS' }), 'malformed'],
    ['amount not digits', n({ amount: '58000.0' }), 'malformed'],
    ['another partner', n({ partnerCode: 'OTHER' }), 'signature'],
  ]);
});

t.test('sandbox', async (tt) => {
  const creds = { secret: 'sandbox-test-fixture-secret' };
  const ts = Math.floor(now().getTime() / 1000);
  const base = { merchant: SANDBOX_MERCHANT, reference: REF, txn_id: 'SBX1', status: 'SUCCESS', code: '00', amount: 58_000, currency: 'VND', paid_at: ts, ts };
  const n = (o: Record<string, string | number>) => post(withSignature({ ...base, ...o }, creds.secret));
  check(tt, sandboxAdapter, ctx(creds), [
    ['genuine', n({}), false],
    ['dated within the skew window', n({ ts: ts + 60 }), false],
    ['dated 10 years ahead', n({ ts: ts + TEN_YEARS / 1000 }), 'stale'],
    ['a code the sandbox does not document', n({ code: '42' }), 'malformed'],
    ['a status the sandbox does not document', n({ status: 'PAID' }), 'malformed'],
    ['a field the sandbox does not send', n({ extra: '1' }), 'malformed'],
    ['txn_id with separators', n({ txn_id: 'a&b' }), 'malformed'],
    ['another merchant', n({ merchant: 'OTHER' }), 'signature'],
  ]);
});

t.test('what we sign cannot frame a field', async (tt) => {
  tt.equal(
    signableText('Z&orderType=x&partnerCode=FGSANDBOXMOMO&resultCode=0&transId=q', 255),
    'Z orderType x partnerCode FGSANDBOXMOMO resultCode 0 transId q',
  );
  tt.equal(signableText('Lệ phí\u0000 hộ tịch\r\n| 2026', 255), 'Lệ phí hộ tịch 2026', 'Vietnamese text stays; controls and pipes go');
  tt.equal(signableText('\ud800abc', 255), 'abc', 'a lone surrogate goes');
  tt.equal(Array.from(signableText('😀'.repeat(10), 5)).length, 5, 'cut by code points');
});
