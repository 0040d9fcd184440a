/**
 * Property: a genuine signed provider message whose field boundaries are moved (values that carry
 * the separators of the signed string) never verifies, for every adapter. The genuine messages
 * here are signed the provider's way over values that may themselves contain `&`, `=`, `|` (as a
 * provider would sign whatever we, or a payer, put in a free-text field); each re-split keeps the
 * signed string byte for byte where the format allows it, so its signature still matches, and the
 * adapter must refuse it by the shape of its fields. The sending side: signableText never lets a
 * value move a boundary.
 */
import t from 'tap';
import fc from 'fast-check';
import { ManualClock } from '../gateway/clock.js';
import type { AdapterContext, InboundHttp, PaymentAdapter, VerifyResult } from '../adapters/contract.js';
import { framingSafe, signableText, signableUrl } from '../adapters/adapter-kit.js';
import { momoAdapter } from '../adapters/momo/adapter.js';
import { CREATE_KEYS, IPN_KEYS, momoSign, rawString } from '../adapters/momo/protocol.js';
import { paygovAdapter } from '../adapters/paygov/adapter.js';
import { pgChecksum, pgTime } from '../adapters/paygov/protocol.js';
import { zalopayAdapter } from '../adapters/zalopay/adapter.js';
import { appTransId, zpMac } from '../adapters/zalopay/protocol.js';
import { vnpayAdapter } from '../adapters/vnpay/adapter.js';
import { secureHash, signData, vnpDate } from '../adapters/vnpay/protocol.js';
import { sandboxAdapter } from '../adapters/sandbox/adapter.js';
import { SANDBOX_MERCHANT, canonicalString, sign as sandboxSign } from '../adapters/sandbox/protocol.js';

const clock = new ManualClock('2026-03-10T02:00:00Z');
const ctx = (credentials: Record<string, string>): AdapterContext => ({
  clock,
  credentials,
  publicUrl: 'http://feegate.test',
  http: { request: () => Promise.reject(new Error('no network in this test')) },
});
const REF = 'FG0123456789ABCDEF0123';
const RUNS = { numRuns: 1000, seed: 20261201 };

/** Free text with the separators of every signed format, and fragments that name real fields. */
const hostile = (fragments: string[]) =>
  fc
    .array(fc.oneof(fc.constantFrom(...fragments), fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '&', '=', '|', '%', '+'), maxLength: 6 })), {
      maxLength: 5,
    })
    .map((a) => a.join(''));

/** Every way to cut `s` at `sep` into exactly `n` parts, as the indexes of the cuts, chosen by fast-check. */
function cutsAt(s: string, sep: string): number[] {
  const at: number[] = [];
  for (let i = s.indexOf(sep); i !== -1; i = s.indexOf(sep, i + 1)) at.push(i);
  return at;
}

/** The same fields (an empty value and an absent one are the same: the signed strings skip or keep both alike). */
const same = (a: Record<string, unknown>, b: Record<string, unknown>) => {
  const norm = (o: Record<string, unknown>) =>
    JSON.stringify(
      Object.entries(o)
        .map(([k, v]) => [k, String(v)])
        .filter(([, v]) => v !== '')
        .sort(),
    );
  return norm(a) === norm(b);
};

/** Counts a re-split the adapter believed (each is a forgery); the test asserts the count is zero. */
const believed: string[] = [];
function mustRefuse(_tt: unknown, adapter: PaymentAdapter, r: VerifyResult, what: string) {
  if (r.ok) believed.push(`${adapter.id}: ${what}`);
}

t.test('MoMo: the IPN raw string re-split at any `&key=` verifies never', async (tt) => {
  const creds = {
    partner_code: 'FGSANDBOXMOMO',
    access_key: 'ak-test-fixture',
    secret_key: 'sk-test-fixture-0123456789abcdef',
    endpoint: 'http://momo.invalid',
  };
  let dangerous = 0;
  fc.assert(
    fc.property(
      hostile([
        '&resultCode=0',
        '&transId=1',
        '&orderType=momo_wallet',
        '&partnerCode=FGSANDBOXMOMO',
        '&payType=qr',
        `&requestId=${REF}`,
        '&responseTime=1',
        'Z',
      ]),
      fc.array(fc.nat(), { minLength: IPN_KEYS.length, maxLength: IPN_KEYS.length }),
      (orderInfo, picks) => {
        const genuine: Record<string, unknown> = {
          partnerCode: creds.partner_code,
          orderId: REF,
          requestId: REF,
          amount: 58_000,
          orderInfo,
          orderType: 'momo_wallet',
          transId: 0,
          resultCode: 1006,
          message: 'Transaction denied by user.',
          payType: 'qr',
          responseTime: clock.now().getTime(),
          extraData: '',
        };
        const signature = momoSign(creds.secret_key, { ...genuine, accessKey: creds.access_key }, IPN_KEYS);
        const raw = rawString({ ...genuine, accessKey: creds.access_key }, IPN_KEYS);
        // Walk the keys in order; each value ends at one of the `&nextKey=` that follow (chosen by picks).
        const re: Record<string, string> = {};
        let pos = 0;
        for (let j = 0; j < IPN_KEYS.length; j++) {
          const key = IPN_KEYS[j]!;
          const start = pos + key.length + 1;
          if (j === IPN_KEYS.length - 1) {
            re[key] = raw.slice(start);
            break;
          }
          const next = `&${IPN_KEYS[j + 1]}=`;
          const ends = cutsAt(raw, next).filter((i) => i >= start);
          if (ends.length === 0) return; // no way to go on from this cut
          const end = ends[picks[j]! % ends.length]!;
          re[key] = raw.slice(start, end);
          pos = end + 1;
        }
        delete re.accessKey;
        if (rawString({ ...re, accessKey: creds.access_key }, IPN_KEYS) !== raw || same(re, genuine)) return;
        dangerous++;
        const msg: InboundHttp = { method: 'POST', query: {}, headers: {}, rawBody: JSON.stringify({ ...re, resultCode: Number(re.resultCode), signature }) };
        mustRefuse(tt, momoAdapter, momoAdapter.verifyNotification(ctx(creds), msg), JSON.stringify(re));
        mustRefuse(tt, momoAdapter, momoAdapter.verifyReturn(ctx(creds), { method: 'GET', query: { ...re, signature }, headers: {}, rawBody: '' }), 'return');
      },
    ),
    RUNS,
  );
  tt.ok(dangerous > 20, `${dangerous} re-splits kept MoMo's signature valid`);
  tt.same(believed.filter((b) => b.startsWith('momo:')).slice(0, 3), [], 'none of them was believed');
  // What a separator-free message looks like still verifies (the property is not "refuse everything").
  const good: Record<string, unknown> = {
    partnerCode: creds.partner_code,
    orderId: REF,
    requestId: REF,
    amount: 58_000,
    orderInfo: 'Le phi',
    orderType: 'momo_wallet',
    transId: 4088000001,
    resultCode: 0,
    message: 'Successful.',
    payType: 'qr',
    responseTime: clock.now().getTime(),
    extraData: '',
  };
  const ok = momoAdapter.verifyNotification(ctx(creds), {
    method: 'POST',
    query: {},
    headers: {},
    rawBody: JSON.stringify({ ...good, signature: momoSign(creds.secret_key, { ...good, accessKey: creds.access_key }, IPN_KEYS) }),
  });
  tt.ok(ok.ok, 'a genuine separator-free IPN verifies');
});

t.test('PayGov: the checksum string re-split at any `&` and `=` verifies never', async (tt) => {
  const creds = { partner_code: 'FG-SANDBOX-DVC', secret: 'paygov-test-fixture-secret', endpoint: 'http://paygov.invalid' };
  let dangerous = 0;
  fc.assert(
    fc.property(
      hostile(['&status=SUCCESS', '&message=x', '&orderId=FG1', '&paidAt=20260310090000', '&partnerCode=FG-SANDBOX-DVC', '&statut=', 'VCB']),
      fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
      (bankCode, keep) => {
        const genuine: Record<string, unknown> = {
          partnerCode: creds.partner_code,
          orderId: REF,
          transactionId: 'PG20260310090000000001',
          amount: 58_000,
          status: 'CANCELLED',
          bankCode,
          paidAt: '',
          timestamp: pgTime(clock.now()),
        };
        const checksum = pgChecksum(creds.secret, genuine);
        const raw = Object.keys(genuine)
          .filter((k) => genuine[k] !== '')
          .sort()
          .map((k) => `${k}=${String(genuine[k])}`)
          .join('&');
        // Keep some `&` as separators (chosen by keep), cut each part at its first `=`.
        const amps = cutsAt(raw, '&');
        const parts: string[] = [];
        let from = 0;
        amps.forEach((i, n) => {
          if (keep[n % keep.length]) {
            parts.push(raw.slice(from, i));
            from = i + 1;
          }
        });
        parts.push(raw.slice(from));
        const re: Record<string, string> = {};
        for (const p of parts) {
          const eq = p.indexOf('=');
          if (eq <= 0) return;
          re[p.slice(0, eq)] = p.slice(eq + 1);
        }
        if (pgChecksum(creds.secret, re) !== checksum || same(re, genuine)) return;
        dangerous++;
        mustRefuse(
          tt,
          paygovAdapter,
          paygovAdapter.verifyNotification(ctx(creds), { method: 'POST', query: {}, headers: {}, rawBody: JSON.stringify({ ...re, checksum }) }),
          JSON.stringify(re),
        );
        mustRefuse(
          tt,
          paygovAdapter,
          paygovAdapter.verifyReturn(ctx(creds), { method: 'GET', query: { ...re, checksum }, headers: {}, rawBody: '' }),
          'return',
        );
      },
    ),
    RUNS,
  );
  tt.ok(dangerous > 20, `${dangerous} re-splits kept PayGov's checksum valid`);
  tt.same(believed.filter((b) => b.startsWith('paygov:')).slice(0, 3), [], 'none of them was believed');
});

t.test('ZaloPay: the redirect checksum re-split at any `|` verifies never', async (tt) => {
  const creds = { app_id: '2554', key1: 'zp-key1-test-fixture', key2: 'zp-key2-test-fixture', endpoint: 'http://zalopay.invalid' };
  const names = ['appid', 'apptransid', 'pmcid', 'bankcode', 'amount', 'discountamount', 'status'] as const;
  let dangerous = 0;
  fc.assert(
    fc.property(hostile(['|1', '|-49', '|0', '|58000', 'zalopayapp']), fc.array(fc.nat(), { minLength: 6, maxLength: 6 }), (bankcode, picks) => {
      const genuine = ['2554', appTransId(clock.now(), REF), '38', bankcode, '58000', '0', '-49'];
      const raw = genuine.join('|');
      const checksum = zpMac(creds.key2, [raw]);
      const pipes = cutsAt(raw, '|');
      const chosen = [...new Set(picks.map((p) => pipes[p % pipes.length]!))].sort((a, b) => a - b);
      if (chosen.length !== 6) return;
      const values = [-1, ...chosen].map((c, i) => raw.slice(c + 1, chosen[i] ?? raw.length));
      if (values.join('|') !== raw || values.every((v, i) => v === genuine[i])) return;
      dangerous++;
      const query = Object.fromEntries(names.map((n, i) => [n, values[i]!]));
      mustRefuse(
        tt,
        zalopayAdapter,
        zalopayAdapter.verifyReturn(ctx(creds), { method: 'GET', query: { ...query, checksum }, headers: {}, rawBody: '' }),
        JSON.stringify(query),
      );
    }),
    RUNS,
  );
  tt.ok(dangerous > 20, `${dangerous} re-splits kept ZaloPay's checksum valid`);
  tt.same(believed.filter((b) => b.startsWith('zalopay:')).slice(0, 3), [], 'none of them was believed');
});

/** Form-encoded signed strings (VNPay, sandbox): cut anywhere at `&`/`=`, decode, and it must not verify. */
function formResplits(raw: string, keep: boolean[]): Record<string, string> | undefined {
  const amps = cutsAt(raw, '&');
  const parts: string[] = [];
  let from = 0;
  amps.forEach((i, n) => {
    if (keep[n % keep.length]) {
      parts.push(raw.slice(from, i));
      from = i + 1;
    }
  });
  parts.push(raw.slice(from));
  const out: Record<string, string> = {};
  for (const p of parts) {
    const eq = p.indexOf('=');
    if (eq <= 0) return undefined;
    const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    out[dec(p.slice(0, eq))] = dec(p.slice(eq + 1));
  }
  return out;
}

t.test('VNPay and sandbox: form-encoded signed strings re-split verify never', async (tt) => {
  const vn = { tmn_code: 'FGTEST01', hash_secret: 'vnpay-test-fixture-secret', pay_url: 'http://vnpay.invalid', api_url: 'http://vnpay.invalid' };
  const sb = { secret: 'sandbox-test-fixture-secret' };
  fc.assert(
    fc.property(
      hostile(['&vnp_ResponseCode=00', '&vnp_TransactionStatus=00', '&status=SUCCESS', '=']),
      fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }),
      (text, keep) => {
        const p: Record<string, string> = {
          vnp_Amount: '5800000',
          vnp_BankCode: 'NCB',
          vnp_OrderInfo: text || 'x',
          vnp_PayDate: vnpDate(clock.now()),
          vnp_ResponseCode: '24',
          vnp_TmnCode: vn.tmn_code,
          vnp_TransactionNo: '0',
          vnp_TransactionStatus: '02',
          vnp_TxnRef: REF,
        };
        const hash = secureHash(p, vn.hash_secret);
        const re = formResplits(signData(p), keep);
        if (re && !same(re, p))
          mustRefuse(
            tt,
            vnpayAdapter,
            vnpayAdapter.verifyNotification(ctx(vn), { method: 'GET', query: { ...re, vnp_SecureHash: hash }, headers: {}, rawBody: '' }),
            JSON.stringify(re),
          );
        const f = {
          merchant: SANDBOX_MERCHANT,
          reference: REF,
          txn_id: 'SBX1',
          status: 'CANCELLED',
          code: text || 'x',
          amount: 58_000,
          currency: 'VND',
          ts: Math.floor(clock.now().getTime() / 1000),
        };
        const sig = sandboxSign(f, sb.secret);
        const re2 = formResplits(canonicalString(f), keep);
        if (re2 && !same(re2, f))
          mustRefuse(
            tt,
            sandboxAdapter,
            sandboxAdapter.verifyNotification(ctx(sb), { method: 'POST', query: {}, headers: {}, rawBody: JSON.stringify({ ...re2, sig }) }),
            JSON.stringify(re2),
          );
      },
    ),
    RUNS,
  );
  tt.same(believed.filter((b) => b.startsWith('vnpay:') || b.startsWith('sandbox:')).slice(0, 3), [], 'no re-split was believed');
});

t.test('sending side: signableText and signableUrl never leave a separator', async (tt) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 1, max: 300 }), (s, max) => {
      const out = signableText(s, max);
      if (!framingSafe(out) || Array.from(out).length > max) return false;
      // A MoMo create string built with it splits into exactly its keys again.
      const raw = rawString(
        {
          accessKey: 'a',
          amount: 1000,
          extraData: '',
          ipnUrl: signableUrl('http://x/n'),
          orderId: REF,
          orderInfo: out,
          partnerCode: 'P',
          redirectUrl: signableUrl('http://x/r'),
          requestId: REF,
          requestType: 'captureWallet',
        },
        CREATE_KEYS,
      );
      return raw.split('&').length === CREATE_KEYS.length && raw.split('&').every((kv, i) => kv.split('=')[0] === CREATE_KEYS[i] && kv.split('=').length === 2);
    }),
    { numRuns: 500, seed: 20261201 },
  );
  tt.equal(signableText('Z&orderType=x|y\u0000\u200b', 255), 'Z orderType x y');
  tt.equal(signableUrl('http://feegate.test/v1/return/momo'), 'http://feegate.test/v1/return/momo', 'our URLs are unchanged');
});

t.test('no re-split message was believed by any adapter', async (tt) => {
  tt.same(believed.slice(0, 8), [], `${believed.length} forged re-splits verified`);
});
