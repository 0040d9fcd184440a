/**
 * The ZaloPay adapter (API v2). Checkout: a create call (mac with key1) answering order_url;
 * callback: `{data, mac, type}` verified with key2 over the exact data string, sent on success
 * only (failures are learnt by query), answered `{"return_code":1,...}`; query and refund with key1.
 * Credentials: app_id, key1, key2, endpoint.
 */
import crypto from 'node:crypto';
import type {
  AdapterContext, AnswerKind, CallbackAnswer, CheckoutRequest, CheckoutResult, InboundHttp, PaymentAdapter,
  RefundQuery, RefundRequest, RefundResult, RefundStatus, SettlementLine, StatusQuery, StatusResult, VerifyResult,
} from '../contract.js';
import { credential, firstValue, parseSettlementCsv, postJson } from '../adapter-kit.js';
import { BAD_MAC_SUB_CODE, NOT_FOUND_SUB_CODE, appTransId, mRefundId, referenceOf, zpMac, zpVerify } from './protocol.js';

const one = firstValue;
const cred = (ctx: AdapterContext, name: string) => credential(ctx, 'ZaloPay', name);
const call = (ctx: AdapterContext, path: string, body: Record<string, unknown>) =>
  postJson(ctx, 'ZaloPay', `${cred(ctx, 'endpoint')}/v2/${path}`, body, Number(ctx.credentials.timeout_ms ?? 15_000));

const ANSWERS: Record<AnswerKind, [number, string]> = {
  ok: [1, 'success'], already_confirmed: [2, 'already processed'], unknown_order: [0, 'order not found'],
  amount_mismatch: [0, 'amount mismatch'], bad_signature: [-1, 'mac not equal'], malformed: [-1, 'invalid data'], error: [0, 'error'],
};

/**
 * What a query's return_code 2 says about the order or refund asked about: that it does not exist,
 * that it failed, or nothing at all when ZaloPay refused our request itself (a mac that does not
 * verify: our credentials, not the payment). Anything else is not a refusal.
 */
function refusal(res: Record<string, unknown>): 'not_found' | 'failed' | 'request_refused' | null {
  if (Number(res.return_code) !== 2) return null;
  const sub = Number(res.sub_return_code);
  return sub === NOT_FOUND_SUB_CODE ? 'not_found' : sub === BAD_MAC_SUB_CODE ? 'request_refused' : 'failed';
}

export const zalopayAdapter: PaymentAdapter = {
  id: 'zalopay',
  displayName: 'ZaloPay',
  sandbox: false,
  notifyMethod: 'POST',
  checkoutFlow: 'remote',
  credentialFields: [{ name: 'app_id', secret: false }, { name: 'key1', secret: true }, { name: 'key2', secret: true }, { name: 'endpoint', secret: false }],

  async createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult> {
    const now = ctx.clock.now();
    const appId = Number(cred(ctx, 'app_id'));
    const body: Record<string, unknown> = {
      app_id: appId, app_user: 'feegate', app_trans_id: appTransId(now, req.reference), app_time: now.getTime(),
      expire_duration_seconds: Math.max(300, Math.round((req.expiresAt.getTime() - now.getTime()) / 1000)), amount: req.amount,
      item: '[]', embed_data: JSON.stringify({ redirecturl: req.returnUrl }), description: req.description.slice(0, 256),
      bank_code: '', callback_url: req.notifyUrl,
    };
    body.mac = zpMac(cred(ctx, 'key1'), [appId, body.app_trans_id as string, 'feegate', req.amount, now.getTime(), body.embed_data as string, '[]']);
    const res = await call(ctx, 'create', body);
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (Number(res.return_code) === 1 && typeof res.order_url === 'string') {
      // Until ZaloPay's own transaction id arrives, the order is known by its app_trans_id.
      return { outcome: 'pending', checkout: { type: 'redirect', url: res.order_url, qr_payload: res.qr_code as string | undefined }, providerTxnId: body.app_trans_id as string };
    }
    // -68, duplicate app_trans_id: ZaloPay has this order already; ask (query), never book it failed.
    if (Number(res.return_code) === 2 && Number(res.sub_return_code) === -68) return { outcome: 'unknown', message: 'ZaloPay already has this order (-68)' };
    if (Number(res.return_code) === 2) return { outcome: 'failed', code: `zalopay_${String(res.sub_return_code ?? 2)}`, message: String(res.return_message ?? 'refused') };
    return { outcome: 'unknown', message: String(res.return_message ?? 'ZaloPay did not say') };
  },

  peekReference(msg: InboundHttp): string | null {
    if (msg.method === 'GET') return referenceOf(one(msg.query.apptransid) ?? '');
    try {
      const outer = JSON.parse(msg.rawBody) as { data?: unknown };
      const data = typeof outer.data === 'string' ? (JSON.parse(outer.data) as { app_trans_id?: unknown }) : {};
      return typeof data.app_trans_id === 'string' ? referenceOf(data.app_trans_id) : null;
    } catch {
      return null;
    }
  },

  verifyNotification(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    let outer: { data?: unknown; mac?: unknown };
    try {
      outer = JSON.parse(msg.rawBody) as typeof outer;
    } catch {
      return { ok: false, reason: 'malformed', message: 'body is not JSON' };
    }
    if (typeof outer.data !== 'string') return { ok: false, reason: 'malformed', message: 'no data string' };
    if (!zpVerify(cred(ctx, 'key2'), outer.data, outer.mac)) return { ok: false, reason: 'signature', message: 'mac does not verify' };
    let d: Record<string, unknown>;
    try {
      d = JSON.parse(outer.data) as Record<string, unknown>;
    } catch {
      return { ok: false, reason: 'malformed', message: 'data is not JSON' };
    }
    const reference = referenceOf(String(d.app_trans_id ?? ''));
    const amount = Number(d.amount);
    if (!reference || !Number.isSafeInteger(amount) || !d.zp_trans_id) return { ok: false, reason: 'malformed', message: 'app_trans_id, amount or zp_trans_id missing' };
    if (String(d.app_id) !== cred(ctx, 'app_id')) return { ok: false, reason: 'signature', message: 'another app' };
    // ZaloPay calls back on success only.
    return { ok: true, notification: { reference, providerTxnId: String(d.zp_trans_id), eventType: 'callback.paid', outcome: 'succeeded', amount, currency: 'VND', payload: d } };
  },

  verifyReturn(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    const q = (k: string) => one(msg.query[k]) ?? '';
    const parts = [q('appid'), q('apptransid'), q('pmcid'), q('bankcode'), q('amount'), q('discountamount'), q('status')];
    if (!zpVerify(cred(ctx, 'key2'), parts.join('|'), q('checksum'))) return { ok: false, reason: 'signature', message: 'checksum does not verify' };
    const reference = referenceOf(q('apptransid'));
    if (!reference) return { ok: false, reason: 'malformed', message: 'apptransid' };
    return { ok: true, notification: { reference, providerTxnId: `${reference}#return`, eventType: `return.${q('status')}`, outcome: q('status') === '1' ? 'succeeded' : 'unknown', amount: Number(q('amount')), currency: 'VND', payload: {} } };
  },

  answer(kind: AnswerKind): CallbackAnswer {
    const [code, message] = ANSWERS[kind];
    return { status: 200, contentType: 'application/json', body: JSON.stringify({ return_code: code, return_message: message }) };
  },

  async queryStatus(ctx: AdapterContext, q: StatusQuery): Promise<StatusResult> {
    const appId = cred(ctx, 'app_id');
    const id = q.providerTxnId && /^\d{6}_/.test(q.providerTxnId) ? q.providerTxnId : appTransId(q.createdAt, q.reference);
    const res = await call(ctx, 'query', { app_id: Number(appId), app_trans_id: id, mac: zpMac(cred(ctx, 'key1'), [appId, id, cred(ctx, 'key1')]) });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    const code = Number(res.return_code);
    if (code === 1) return { outcome: 'succeeded', amount: Number(res.amount), providerTxnId: String(res.zp_trans_id), code: '1' };
    if (code === 3) return { outcome: 'pending', code: '3' };
    const no = refusal(res);
    if (no === 'not_found') return { outcome: 'unknown', notFound: true, code: String(NOT_FOUND_SUB_CODE), message: 'order not found' };
    if (no === 'failed') return { outcome: 'failed', code: String(res.sub_return_code ?? 2), message: String(res.return_message ?? '') };
    return { outcome: 'unknown', code: String(res.sub_return_code ?? res.return_code), message: String(res.return_message ?? '') };
  },

  async refund(ctx: AdapterContext, req: RefundRequest): Promise<RefundResult> {
    const appId = cred(ctx, 'app_id');
    const timestamp = ctx.clock.now().getTime();
    const body = {
      app_id: Number(appId), m_refund_id: mRefundId(req.requestedAt ?? ctx.clock.now(), appId, req.refundReference), zp_trans_id: req.providerTxnId ?? '',
      amount: req.amount, timestamp, description: req.reason.slice(0, 100) || 'Hoan tien',
    };
    const res = await call(ctx, 'refund', { ...body, mac: zpMac(cred(ctx, 'key1'), [appId, body.zp_trans_id, body.amount, body.description, timestamp]) });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    const code = Number(res.return_code);
    if (code === 1) return { outcome: 'succeeded', providerRefundId: String(res.refund_id ?? crypto.randomUUID()), code: '1' };
    if (code === 3) return { outcome: 'pending', providerRefundId: String(res.refund_id ?? ''), code: '3' };
    if (code === 2) return { outcome: 'failed', code: String(res.sub_return_code ?? 2), message: String(res.return_message ?? '') };
    return { outcome: 'unknown', code: String(res.return_code), message: String(res.return_message ?? '') };
  },

  async queryRefund(ctx: AdapterContext, q: RefundQuery): Promise<RefundStatus> {
    const appId = cred(ctx, 'app_id');
    const timestamp = ctx.clock.now().getTime();
    const id = mRefundId(q.requestedAt, appId, q.refundReference);
    const res = await call(ctx, 'query_refund', { app_id: Number(appId), m_refund_id: id, timestamp, mac: zpMac(cred(ctx, 'key1'), [appId, id, timestamp]) });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    const code = Number(res.return_code);
    if (code === 1) return { outcome: 'succeeded', providerRefundId: res.refund_id === undefined ? undefined : String(res.refund_id), code: '1' };
    if (code === 3) return { outcome: 'pending', code: '3' };
    const no = refusal(res);
    if (no === 'not_found') return { outcome: 'unknown', notFound: true, code: String(NOT_FOUND_SUB_CODE), message: 'refund not found' };
    if (no === 'failed') return { outcome: 'failed', code: String(res.sub_return_code ?? 2), message: String(res.return_message ?? '') };
    return { outcome: 'unknown', code: String(res.sub_return_code ?? res.return_code), message: String(res.return_message ?? '') };
  },

  /**
   * Assumed layout (ZaloPay's reconciliation export is not public; adjust here when a real one is
   * at hand): CSV header `app_trans_id,zp_trans_id,amount,fee,server_time,status`, amounts in VND,
   * server_time in ms since the epoch, status 1 (paid).
   */
  parseSettlement(content: string): SettlementLine[] {
    return parseSettlementCsv(content, (r) => ({
      providerRef: r.zp_trans_id, ourRef: referenceOf(r.app_trans_id ?? ''), amount: r.amount, fee: r.fee,
      occurredAt: /^[0-9]{1,16}$/.test(r.server_time ?? '') ? new Date(Number(r.server_time)) : undefined,
      status: r.status === '1' ? 'succeeded' : undefined,
    }));
  },
};
