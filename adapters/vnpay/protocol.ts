/**
 * VNPay payment gateway, API 2.1.0: field formats and signing, nothing else (the adapter and the
 * simulator build on this). Source: VNPay's public docs (pay.html, querydr&refund.html) and the
 * `vnpay` npm library, as summarised in shared/docs/payment-protocols.md §1; the test vectors
 * V1–V4 there reproduce byte for byte (test/vnpay-protocol.test.ts).
 *
 * - Amounts travel as VND × 100 (`vnp_Amount=1000000` is 10,000 VND).
 * - Dates are `yyyyMMddHHmmss` in Vietnam time (GMT+7).
 * - Redirect, return and IPN: HMAC-SHA512(hash secret) over the `vnp_*` fields except the hash
 *   fields, empty values dropped, keys sorted, `k=v` form-encoded (space → +), joined by `&`.
 * - querydr / refund (JSON POST): HMAC-SHA512 over the values in a fixed order joined by `|`.
 */
import crypto from 'node:crypto';
import { VN_OFFSET_MS } from '../../gateway/clock.js';

export const VERSION = '2.1.0';

/** `yyyyMMddHHmmss` in GMT+7. */
export function vnpDate(at: Date): string {
  return new Date(at.getTime() + VN_OFFSET_MS).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** The instant a `yyyyMMddHHmmss` GMT+7 stamp names; undefined when malformed. */
export function parseVnpDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m) return undefined;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) - VN_OFFSET_MS;
  return Number.isNaN(t) ? undefined : new Date(t);
}

/**
 * The largest payment VNPay's x100 amounts can carry exactly through a JSON number or a Number:
 * 90,071,992,547,409 VND (x100 is just under 2^53). VNPay's own per-terminal limits are lower and
 * are VNPay's to enforce; this one is ours, so that no amount is ever rounded.
 */
export const VNPAY_MAX_AMOUNT = Math.floor(Number.MAX_SAFE_INTEGER / 100);

export function toVnpAmount(vnd: number): string {
  return (BigInt(vnd) * 100n).toString();
}

/** VND from `vnp_Amount` (digits, parsed as a bigint), or undefined when it is not a whole number of VND up to `max`. */
export function fromVnpAmount(s: string, max = VNPAY_MAX_AMOUNT): number | undefined {
  if (!/^(0|[1-9][0-9]{0,19})$/.test(s)) return undefined;
  const n = BigInt(s);
  return n % 100n === 0n && n / 100n <= BigInt(max) ? Number(n / 100n) : undefined;
}

/** The fields VNPay documents in a payment result (return URL and IPN); a result with any other vnp_ field is refused. */
export const RESULT_FIELDS: readonly string[] = [
  'vnp_Amount',
  'vnp_BankCode',
  'vnp_BankTranNo',
  'vnp_CardType',
  'vnp_OrderInfo',
  'vnp_PayDate',
  'vnp_ResponseCode',
  'vnp_TmnCode',
  'vnp_TransactionNo',
  'vnp_TransactionStatus',
  'vnp_TxnRef',
  'vnp_SecureHash',
  'vnp_SecureHashType',
];
/** vnp_ResponseCode values VNPay documents for a payment result. */
export const RESPONSE_CODES: readonly string[] = ['00', '07', '09', '10', '11', '12', '13', '24', '51', '65', '75', '79', '99'];
/** vnp_TransactionStatus values VNPay documents. */
export const TRANSACTION_STATUSES: readonly string[] = ['00', '01', '02', '04', '05', '06', '07', '09'];

/** The string that is signed for a redirect, return or IPN. */
export function signData(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const k of Object.keys(params).sort()) {
    const v = params[k];
    if (!k.startsWith('vnp_') || k === 'vnp_SecureHash' || k === 'vnp_SecureHashType' || v === undefined || v === '') continue;
    q.append(k, v);
  }
  return q.toString();
}

export function hmac512(secret: string, data: string): string {
  return crypto.createHmac('sha512', secret).update(data, 'utf8').digest('hex');
}

export function secureHash(params: Record<string, string | undefined>, secret: string): string {
  return hmac512(secret, signData(params));
}

/** Constant-time check of `vnp_SecureHash` (case-insensitive hex, as VNPay sends upper or lower). */
export function verifySecureHash(params: Record<string, string | undefined>, secret: string): boolean {
  const given = (params.vnp_SecureHash ?? '').toLowerCase();
  if (!/^[0-9a-f]{128}$/.test(given)) return false;
  return crypto.timingSafeEqual(Buffer.from(secureHash(params, secret), 'hex'), Buffer.from(given, 'hex'));
}

/** The pipe-joined hash of querydr/refund requests and responses (missing values are empty). */
export function pipeHash(values: readonly (string | number | undefined | null)[], secret: string): string {
  return hmac512(secret, values.map((v) => (v === undefined || v === null ? '' : String(v))).join('|'));
}

export const QUERY_REQUEST_FIELDS = [
  'vnp_RequestId',
  'vnp_Version',
  'vnp_Command',
  'vnp_TmnCode',
  'vnp_TxnRef',
  'vnp_TransactionDate',
  'vnp_CreateDate',
  'vnp_IpAddr',
  'vnp_OrderInfo',
] as const;
export const QUERY_RESPONSE_FIELDS = [
  'vnp_ResponseId',
  'vnp_Command',
  'vnp_ResponseCode',
  'vnp_Message',
  'vnp_TmnCode',
  'vnp_TxnRef',
  'vnp_Amount',
  'vnp_BankCode',
  'vnp_PayDate',
  'vnp_TransactionNo',
  'vnp_TransactionType',
  'vnp_TransactionStatus',
  'vnp_OrderInfo',
  'vnp_PromotionCode',
  'vnp_PromotionAmount',
] as const;
export const REFUND_REQUEST_FIELDS = [
  'vnp_RequestId',
  'vnp_Version',
  'vnp_Command',
  'vnp_TmnCode',
  'vnp_TransactionType',
  'vnp_TxnRef',
  'vnp_Amount',
  'vnp_TransactionNo',
  'vnp_TransactionDate',
  'vnp_CreateBy',
  'vnp_CreateDate',
  'vnp_IpAddr',
  'vnp_OrderInfo',
] as const;
export const REFUND_RESPONSE_FIELDS = [
  'vnp_ResponseId',
  'vnp_Command',
  'vnp_ResponseCode',
  'vnp_Message',
  'vnp_TmnCode',
  'vnp_TxnRef',
  'vnp_Amount',
  'vnp_BankCode',
  'vnp_PayDate',
  'vnp_TransactionNo',
  'vnp_TransactionType',
  'vnp_TransactionStatus',
  'vnp_OrderInfo',
] as const;

export function fieldsHash(body: Record<string, unknown>, fields: readonly string[], secret: string): string {
  return pipeHash(
    fields.map((f) => body[f] as string | undefined),
    secret,
  );
}

/** Our answers to an IPN (HTTP 200, JSON). `00` and `02` end VNPay's retries. */
export const IPN_ANSWERS = {
  ok: { RspCode: '00', Message: 'Confirm Success' },
  already_confirmed: { RspCode: '02', Message: 'Order already confirmed' },
  unknown_order: { RspCode: '01', Message: 'Order not found' },
  amount_mismatch: { RspCode: '04', Message: 'Invalid amount' },
  bad_signature: { RspCode: '97', Message: 'Invalid signature' },
  malformed: { RspCode: '99', Message: 'Input data required' },
  error: { RspCode: '99', Message: 'Unknown error' },
} as const;

export type Outcome = 'succeeded' | 'pending' | 'failed' | 'cancelled' | 'unknown';

/**
 * What a payment result means for us. Success needs both codes at 00. A code we do not know maps
 * to `unknown`, never to `failed`; 07 (money debited, flagged suspicious) is not a failure either.
 */
export function paymentOutcome(responseCode: string, transactionStatus: string): Outcome {
  if (responseCode === '00' && transactionStatus === '00') return 'succeeded';
  if (transactionStatus === '01') return 'pending';
  if (responseCode === '24') return 'cancelled';
  if (responseCode === '11') return 'failed';
  if (['09', '10', '12', '13', '51', '65', '75', '79'].includes(responseCode)) return 'failed';
  return 'unknown';
}
