/**
 * MoMo e-wallet, payment gateway API v2 (`/v2/gateway/api/*`): signing and result codes.
 * Source: MoMo's developer docs and official samples, summarised in shared/docs/payment-protocols.md §2.
 * signature = hex HMAC-SHA256(secretKey, raw), raw = `k=v` joined by `&` over a fixed, alphabetical
 * key set, values raw (not URL-encoded; empty stays `k=`). The IPN's raw uses our own accessKey.
 */
import crypto from 'node:crypto';

export const CREATE_KEYS = [
  'accessKey',
  'amount',
  'extraData',
  'ipnUrl',
  'orderId',
  'orderInfo',
  'partnerCode',
  'redirectUrl',
  'requestId',
  'requestType',
] as const;
export const IPN_KEYS = [
  'accessKey',
  'amount',
  'extraData',
  'message',
  'orderId',
  'orderInfo',
  'orderType',
  'partnerCode',
  'payType',
  'requestId',
  'responseTime',
  'resultCode',
  'transId',
] as const;
export const QUERY_KEYS = ['accessKey', 'orderId', 'partnerCode', 'requestId'] as const;
export const REFUND_KEYS = ['accessKey', 'amount', 'description', 'orderId', 'partnerCode', 'requestId', 'transId'] as const;

export function rawString(fields: Record<string, unknown>, keys: readonly string[]): string {
  return keys.map((k) => `${k}=${fields[k] === undefined || fields[k] === null ? '' : String(fields[k])}`).join('&');
}

export function momoSign(secretKey: string, fields: Record<string, unknown>, keys: readonly string[]): string {
  return crypto.createHmac('sha256', secretKey).update(rawString(fields, keys), 'utf8').digest('hex');
}

export function momoVerify(secretKey: string, fields: Record<string, unknown>, keys: readonly string[]): boolean {
  const given = String(fields.signature ?? '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  return crypto.timingSafeEqual(Buffer.from(momoSign(secretKey, fields, keys), 'hex'), Buffer.from(given, 'hex'));
}

export type Outcome = 'succeeded' | 'pending' | 'failed' | 'cancelled' | 'unknown';

/** resultCode → outcome. 9000 (authorised, not captured) is pending; an unknown code is unknown. */
export function momoOutcome(code: number): Outcome {
  if (code === 0) return 'succeeded';
  if ([1000, 7000, 7002, 8000, 9000].includes(code)) return 'pending';
  if ([1003, 1006, 1017].includes(code)) return 'cancelled';
  if ([1001, 1002, 1004, 1005, 1007, 1026].includes(code)) return 'failed';
  return 'unknown';
}

export const ORDER_ID = /^[0-9a-zA-Z]([-_.]*[0-9a-zA-Z]+)*$/;
