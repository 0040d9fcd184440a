/**
 * PayGov / the national public-service payment platform (Cổng hỗ trợ thanh toán quốc gia): every
 * field name, message shape, signing rule and code of our integration lives in THIS module.
 *
 * ASSUMPTIONS (no public specification exists; see shared/docs/payment-protocols.md §4). Match each
 * against the official integration package when the province hands it over; nothing else in the
 * adapter or simulator needs to change:
 *  A1 Transport: JSON over HTTPS POST; the hub's base URL is a credential (`endpoint`).
 *  A2 Paths: create `/api/v1/payment-requests`, query `/api/v1/payment-requests/query`,
 *     refund `/api/v1/refunds`, refund query `/api/v1/refunds/query`.
 *  A3 Identity: the agency is `partnerCode` (mã đơn vị) with a shared `secret` (checksum key).
 *  A4 Checksum: HMAC-SHA256(secret, k1=v1&k2=v2&… over every field except `checksum`, keys sorted
 *     by code point, values as strings, arrays/objects as compact JSON, empty values skipped),
 *     lowercase hex. Compared in constant time.
 *  A5 Create carries the dossier (maHoSo → dossierCode, maTTHC → procedureCode), the fee items
 *     (code, name, amount; they must add up to `amount`), payer name, return and notify URLs,
 *     `expireAt` (yyyyMMddHHmmss, GMT+7). Answer: `code` "00" + `paymentUrl` + `transactionId`.
 *  A6 Result codes (create/query/refund answers): 00 ok, 01 order not found, 02 invalid data,
 *     03 duplicate orderId, 07 order expired, 97 invalid checksum, 99 system error (→ unknown).
 *  A7 Notification: POST JSON {partnerCode, orderId, transactionId, amount, status, bankCode,
 *     paidAt, timestamp, checksum}; status SUCCESS | FAILED | CANCELLED | PENDING. The hub expects
 *     a JSON answer {code, message}: 00 confirmed, 01 order not found, 02 already confirmed,
 *     04 invalid amount, 97 invalid checksum, 99 unknown error; it retries anything but 00/02.
 *  A8 Browser return: GET with the notification's fields as query parameters (never credits).
 *  A9 Refund: partial or full, by transactionId; `requestId` (our refund reference) is the
 *     idempotency key (the same requestId again answers the first result); answer code 00 with
 *     refundTransactionId. Refund query `/api/v1/refunds/query` {partnerCode, requestId,
 *     timestamp, checksum}: 00 with `status` SUCCESS | PENDING | FAILED, `amount`,
 *     refundTransactionId; 01 when the hub has no refund with that requestId.
 *  A10 Reconciliation file: CSV `orderId,transactionId,amount,fee,paidAt,status` (paidAt
 *     yyyyMMddHHmmss GMT+7, status SUCCESS).
 */
import crypto from 'node:crypto';
import { VN_OFFSET_MS } from '../../gateway/clock.js';
import type { Outcome } from '../contract.js';

export const PATHS = {
  create: '/api/v1/payment-requests',
  query: '/api/v1/payment-requests/query',
  refund: '/api/v1/refunds',
  refundQuery: '/api/v1/refunds/query',
} as const;

export const CODES = { ok: '00', notFound: '01', invalid: '02', duplicate: '03', expired: '07', checksum: '97', system: '99' } as const;

/** Answers to a notification (A7). */
export const NOTIFY_ANSWERS = {
  ok: { code: '00', message: 'Confirm Success' },
  already_confirmed: { code: '02', message: 'Order already confirmed' },
  unknown_order: { code: '01', message: 'Order not found' },
  amount_mismatch: { code: '04', message: 'Invalid amount' },
  bad_signature: { code: '97', message: 'Invalid checksum' },
  malformed: { code: '99', message: 'Invalid request' },
  error: { code: '99', message: 'Unknown error' },
} as const;

function canonical(fields: Record<string, unknown>): string {
  return Object.keys(fields)
    .filter((k) => k !== 'checksum' && fields[k] !== undefined && fields[k] !== null && fields[k] !== '')
    .sort()
    .map((k) => `${k}=${typeof fields[k] === 'object' ? JSON.stringify(fields[k]) : String(fields[k])}`)
    .join('&');
}

export function pgChecksum(secret: string, fields: Record<string, unknown>): string {
  return crypto.createHmac('sha256', secret).update(canonical(fields), 'utf8').digest('hex');
}

export function pgSign<T extends Record<string, unknown>>(secret: string, fields: T): T & { checksum: string } {
  return { ...fields, checksum: pgChecksum(secret, fields) };
}

export function pgVerify(secret: string, fields: Record<string, unknown>): boolean {
  const given = String(fields.checksum ?? '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  return crypto.timingSafeEqual(Buffer.from(pgChecksum(secret, fields), 'hex'), Buffer.from(given, 'hex'));
}

/** yyyyMMddHHmmss in GMT+7. */
export function pgTime(at: Date): string {
  return new Date(at.getTime() + VN_OFFSET_MS).toISOString().slice(0, 19).replace(/[-T:]/g, '');
}

export function parsePgTime(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}+07:00`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Payment status → our outcome; anything we do not know is `unknown`, never `failed`. */
export function pgOutcome(status: unknown): Outcome {
  switch (status) {
    case 'SUCCESS':
      return 'succeeded';
    case 'FAILED':
      return 'failed';
    case 'CANCELLED':
      return 'cancelled';
    case 'PENDING':
      return 'pending';
    default:
      return 'unknown';
  }
}
