/**
 * ZaloPay API v2: MACs, the app_trans_id format and result codes. Source: ZaloPay's docs and the
 * official quickstart sample, summarised in shared/docs/payment-protocols.md §3.
 * - create:   mac = HMAC-SHA256(key1, app_id|app_trans_id|app_user|amount|app_time|embed_data|item)
 * - callback: mac = HMAC-SHA256(key2, data) over the exact `data` string received
 * - redirect: checksum = HMAC-SHA256(key2, appid|apptransid|pmcid|bankcode|amount|discountamount|status)
 * - query:    mac = HMAC-SHA256(key1, app_id|app_trans_id|key1)
 * - refund:   mac = HMAC-SHA256(key1, app_id|zp_trans_id|amount|description|timestamp)
 */
import crypto from 'node:crypto';
import { VN_OFFSET_MS } from '../../gateway/clock.js';

export function zpMac(key: string, parts: readonly (string | number)[]): string {
  return crypto.createHmac('sha256', key).update(parts.map(String).join('|'), 'utf8').digest('hex');
}

export function zpVerify(key: string, data: string, mac: unknown): boolean {
  const given = String(mac ?? '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(given)) return false;
  const expected = crypto.createHmac('sha256', key).update(data, 'utf8').digest('hex');
  return crypto.timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(given, 'hex'));
}

/** `yymmdd` of an instant in GMT+7: app_trans_id must start with today's. */
export function yymmdd(at: Date): string {
  return new Date(at.getTime() + VN_OFFSET_MS).toISOString().slice(2, 10).replace(/-/g, '');
}

export function appTransId(at: Date, reference: string): string {
  return `${yymmdd(at)}_${reference}`;
}

/** Our reference from an app_trans_id, or null when it is not one of ours. */
export function referenceOf(appTransIdValue: string): string | null {
  const m = /^\d{6}_(.+)$/.exec(appTransIdValue);
  return m ? m[1]! : null;
}
