/**
 * The sandbox provider's wire protocol: feegate's own test provider, shaped like the Vietnamese
 * gateways (a signed create call, a hosted payment page, a signed server-to-server callback, a
 * signed browser return, query and refund calls).
 *
 * Signing: HMAC-SHA256 (hex) with the merchant secret over the canonical string of all fields but
 * `sig`: keys sorted by code point, each `key=value` form-encoded (URLSearchParams), joined by `&`.
 *
 * Result codes (`code`): 00 success, 01 pending, 02 failed, 03 cancelled, 04 order not found,
 * 05 amount invalid, 06 duplicate request, 97 bad signature, 98 bad request, 99 system error.
 */
import crypto from 'node:crypto';

export const SANDBOX_MERCHANT = 'FEEGATE-SANDBOX';

export type SandboxStatus = 'PENDING' | 'SUCCESS' | 'FAILED' | 'CANCELLED';

export const CODES = {
  success: '00',
  pending: '01',
  failed: '02',
  cancelled: '03',
  notFound: '04',
  amountInvalid: '05',
  duplicate: '06',
  badSignature: '97',
  badRequest: '98',
  systemError: '99',
} as const;

export type Fields = Record<string, string | number>;

export function canonicalString(fields: Fields): string {
  const params = new URLSearchParams();
  for (const key of Object.keys(fields)
    .filter((k) => k !== 'sig')
    .sort()) {
    params.append(key, String(fields[key]));
  }
  return params.toString();
}

export function sign(fields: Fields, secret: string): string {
  return crypto.createHmac('sha256', secret).update(canonicalString(fields), 'utf8').digest('hex');
}

export function withSignature<T extends Fields>(fields: T, secret: string): T & { sig: string } {
  return { ...fields, sig: sign(fields, secret) };
}

/** Constant-time comparison of the presented signature with the expected one. */
export function verify(fields: Fields, secret: string): boolean {
  const presented = typeof fields.sig === 'string' ? fields.sig : '';
  if (!/^[0-9a-f]{64}$/.test(presented)) return false;
  const expected = Buffer.from(sign(fields, secret), 'hex');
  return crypto.timingSafeEqual(expected, Buffer.from(presented, 'hex'));
}

export function statusToCode(status: SandboxStatus): string {
  return { PENDING: CODES.pending, SUCCESS: CODES.success, FAILED: CODES.failed, CANCELLED: CODES.cancelled }[status];
}
