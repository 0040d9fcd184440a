/**
 * ZaloPay API v2: MACs, the app_trans_id format and result codes. Source: ZaloPay's docs and the
 * official quickstart sample, summarised in shared/docs/payment-protocols.md §3.
 * - create:   mac = HMAC-SHA256(key1, app_id|app_trans_id|app_user|amount|app_time|embed_data|item)
 * - callback: mac = HMAC-SHA256(key2, data) over the exact `data` string received
 * - redirect: checksum = HMAC-SHA256(key2, appid|apptransid|pmcid|bankcode|amount|discountamount|status)
 * - query:    mac = HMAC-SHA256(key1, app_id|app_trans_id|key1)
 * - refund:   mac = HMAC-SHA256(key1, app_id|zp_trans_id|amount|description|timestamp)
 * - query_refund: mac = HMAC-SHA256(key1, app_id|m_refund_id|timestamp); return_code 1 refunded,
 *   2 failed, 3 processing. m_refund_id = yymmdd_<app_id>_<unique> is also the refund's
 *   idempotency key. Assumed (not in the public docs we have): an unknown m_refund_id answers
 *   return_code 2 with sub_return_code -101, as the query does for an unknown order.
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

/** The refund id ZaloPay knows a refund by: the day it was asked for (Vietnam time), the app, our reference. */
export const mRefundId = (requestedAt: Date, appId: string, refundReference: string) => `${yymmdd(requestedAt)}_${appId}_${refundReference}`;

/** Sub-code of "no such order or refund" (query and query_refund). */
export const NOT_FOUND_SUB_CODE = -101;

/** Sub-code of "the mac does not verify": our request, not the payment or refund, was refused. */
export const BAD_MAC_SUB_CODE = -402;
