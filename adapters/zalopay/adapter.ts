/**
 * The ZaloPay adapter (API v2). Checkout: a create call (mac with key1) answering order_url;
 * callback: `{data, mac, type}` verified with key2 over the exact data string, sent on success
 * only (failures are learnt by query), answered `{"return_code":1,...}`; query and refund with key1.
 * Credentials: app_id, key1, key2, endpoint.
 */
import crypto from 'node:crypto';
import type {
  AdapterContext,
  AnswerKind,
  CallbackAnswer,
  CheckoutRequest,
  CheckoutResult,
  InboundHttp,
  PaymentAdapter,
  RefundQuery,
  RefundRequest,
  RefundResult,
  RefundStatus,
  SettlementLine,
  StatusQuery,
  StatusResult,
  VerifyResult,
} from '../contract.js';
import {
  FEEGATE_MAX_AMOUNT,
  credential,
  digits,
  firstValue,
  futureDated,
  jsonObject,
  malformed,
  parseSettlementCsv,
  postJson,
  providerAmount,
  signableText,
  signableUrl,
  token,
} from '../adapter-kit.js';
import { BAD_MAC_SUB_CODE, NOT_FOUND_SUB_CODE, appTransId, mRefundId, referenceOf, zpMac, zpVerify } from './protocol.js';

const one = firstValue;
const cred = (ctx: AdapterContext, name: string) => credential(ctx, 'ZaloPay', name);
const call = (ctx: AdapterContext, path: string, body: Record<string, unknown>) =>
  postJson(ctx, 'ZaloPay', `${cred(ctx, 'endpoint')}/v2/${path}`, body, Number(ctx.credentials.timeout_ms ?? 15_000));

const ANSWERS: Record<AnswerKind, [number, string]> = {
  ok: [1, 'success'],
  already_confirmed: [2, 'already processed'],
  unknown_order: [0, 'order not found'],
  amount_mismatch: [0, 'amount mismatch'],
  bad_signature: [-1, 'mac not equal'],
  malformed: [-1, 'invalid data'],
  error: [0, 'error'],
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

/** What we put in every order (and so what a callback must echo): no items, our own user. */
const ITEM = '[]';
const APP_USER = 'feegate';
/** yymmdd_ + one of our references, as appTransId builds it (ZaloPay allows 40 characters). */
const APP_TRANS_ID = /^[0-9]{6}_[0-9A-Za-z_.-]{1,33}$/;

/**
 * The fields of a verified callback's `data`, each in its documented shape, with what we sent
 * echoed as we sent it (app_id, app_user, item, embed_data carrying only our redirect URL); dated
 * by ZaloPay's server_time, which may not be in the future.
 */
function callbackFields(ctx: AdapterContext, d: Record<string, unknown>): VerifyResult {
  if (digits(d.app_id) !== cred(ctx, 'app_id')) return { ok: false, reason: 'signature', message: 'another app' };
  const reference = typeof d.app_trans_id === 'string' && APP_TRANS_ID.test(d.app_trans_id) ? referenceOf(d.app_trans_id) : null;
  if (!reference) return malformed('app_trans_id is not one of ours');
  const amount = providerAmount(d.amount, FEEGATE_MAX_AMOUNT);
  if (amount === undefined) return malformed('amount is not a whole number of VND');
  const zpTransId = digits(d.zp_trans_id),
    serverTime = digits(d.server_time, 16);
  if (zpTransId === undefined || /^0+$/.test(zpTransId) || serverTime === undefined || digits(d.app_time, 16) === undefined) {
    return malformed('zp_trans_id, server_time or app_time is not digits');
  }
  if (d.app_user !== APP_USER || d.item !== ITEM) return malformed('app_user or item is not what we sent');
  const embed = typeof d.embed_data === 'string' ? jsonObject(d.embed_data) : null;
  if (!embed || Object.keys(embed).some((k) => k !== 'redirecturl') || typeof embed.redirecturl !== 'string')
    return malformed('embed_data is not what we sent');
  for (const k of ['channel', 'user_fee_amount', 'discount_amount'] as const) {
    if (d[k] !== undefined && digits(d[k], 16) === undefined) return malformed(`${k} is not digits`);
  }
  if (d.merchant_user_id !== undefined && d.merchant_user_id !== '' && token(d.merchant_user_id, 64) === undefined)
    return malformed('merchant_user_id is not an id');
  const future = futureDated(ctx, new Date(Number(serverTime)), 'server_time');
  if (future) return future;
  // ZaloPay calls back on success only.
  return {
    ok: true,
    notification: { reference, providerTxnId: zpTransId, eventType: 'callback.paid', outcome: 'succeeded', amount, currency: 'VND', payload: d },
  };
}

export const zalopayAdapter: PaymentAdapter = {
  id: 'zalopay',
  displayName: 'ZaloPay',
  sandbox: false,
  notifyMethod: 'POST',
  checkoutFlow: 'remote',
  /** ZaloPay documents no ceiling of its own that we know (its limits are per channel and account): ours. */
  maxAmount: FEEGATE_MAX_AMOUNT,
  credentialFields: [
    { name: 'app_id', secret: false },
    { name: 'key1', secret: true },
    { name: 'key2', secret: true },
    { name: 'endpoint', secret: false },
  ],

  async createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult> {
    // app_trans_id's yymmdd and app_time are the stored creation time, so the query rebuilds the same id.
    const created = req.createdAt;
    const appId = Number(cred(ctx, 'app_id'));
    const body: Record<string, unknown> = {
      app_id: appId,
      app_user: APP_USER,
      app_trans_id: appTransId(created, req.reference),
      app_time: created.getTime(),
      expire_duration_seconds: Math.max(300, Math.round((req.expiresAt.getTime() - created.getTime()) / 1000)),
      amount: req.amount,
      item: ITEM,
      embed_data: JSON.stringify({ redirecturl: signableUrl(req.returnUrl) }),
      description: signableText(req.description, 256) || req.reference,
      bank_code: '',
      callback_url: req.notifyUrl,
    };
    body.mac = zpMac(cred(ctx, 'key1'), [appId, body.app_trans_id as string, APP_USER, req.amount, created.getTime(), body.embed_data as string, ITEM]);
    const res = await call(ctx, 'create', body);
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (Number(res.return_code) === 1 && typeof res.order_url === 'string') {
      // Until ZaloPay's own transaction id arrives, the order is known by its app_trans_id.
      return {
        outcome: 'pending',
        checkout: { type: 'redirect', url: res.order_url, qr_payload: res.qr_code as string | undefined },
        providerTxnId: body.app_trans_id as string,
      };
    }
    // -68, duplicate app_trans_id: ZaloPay has this order already; ask (query), never book it failed.
    if (Number(res.return_code) === 2 && Number(res.sub_return_code) === -68) return { outcome: 'unknown', message: 'ZaloPay already has this order (-68)' };
    if (Number(res.return_code) === 2)
      return { outcome: 'failed', code: `zalopay_${String(res.sub_return_code ?? 2)}`, message: String(res.return_message ?? 'refused') };
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
    const outer = jsonObject(msg.rawBody);
    if (!outer) return malformed('body is not a JSON object');
    if (typeof outer.data !== 'string') return malformed('no data string');
    if (!zpVerify(cred(ctx, 'key2'), outer.data, outer.mac)) return { ok: false, reason: 'signature', message: 'mac does not verify' };
    const d = jsonObject(outer.data);
    if (!d) return malformed('data is not a JSON object');
    return callbackFields(ctx, d);
  },

  verifyReturn(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    const q = (k: string) => one(msg.query[k]) ?? '';
    const parts = [q('appid'), q('apptransid'), q('pmcid'), q('bankcode'), q('amount'), q('discountamount'), q('status')];
    if (!zpVerify(cred(ctx, 'key2'), parts.join('|'), q('checksum'))) return { ok: false, reason: 'signature', message: 'checksum does not verify' };
    // The checksum is over a pipe join: every part must be free of `|` (and in its documented shape) to be believed.
    if (q('appid') !== cred(ctx, 'app_id')) return { ok: false, reason: 'signature', message: 'another app' };
    const reference = APP_TRANS_ID.test(q('apptransid')) ? referenceOf(q('apptransid')) : null;
    if (!reference) return malformed('apptransid');
    const amount = providerAmount(q('amount'), FEEGATE_MAX_AMOUNT);
    if (amount === undefined || digits(q('pmcid'), 6) === undefined || digits(q('discountamount'), 16) === undefined || !/^-?[0-9]{1,4}$/.test(q('status'))) {
      return malformed('amount, pmcid, discountamount or status is not digits');
    }
    if (q('bankcode') !== '' && token(q('bankcode'), 40) === undefined) return malformed('bankcode is not a code');
    return {
      ok: true,
      notification: {
        reference,
        providerTxnId: `${reference}#return`,
        eventType: `return.${q('status')}`,
        outcome: q('status') === '1' ? 'succeeded' : 'unknown',
        amount,
        currency: 'VND',
        payload: {},
      },
    };
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
    if (code === 1) {
      const amount = providerAmount(res.amount, FEEGATE_MAX_AMOUNT),
        zpTransId = digits(res.zp_trans_id);
      if (amount === undefined || zpTransId === undefined)
        return { outcome: 'unknown', message: 'ZaloPay answered a query with a malformed amount or zp_trans_id' };
      return { outcome: 'succeeded', amount, providerTxnId: zpTransId, code: '1' };
    }
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
      app_id: Number(appId),
      m_refund_id: mRefundId(req.requestedAt ?? ctx.clock.now(), appId, req.refundReference),
      zp_trans_id: req.providerTxnId ?? '',
      amount: req.amount,
      timestamp,
      description: signableText(req.reason, 100) || 'Hoan tien',
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
      providerRef: r.zp_trans_id,
      ourRef: referenceOf(r.app_trans_id ?? ''),
      amount: r.amount,
      fee: r.fee,
      occurredAt: /^[0-9]{1,16}$/.test(r.server_time ?? '') ? new Date(Number(r.server_time)) : undefined,
      status: r.status === '1' ? 'succeeded' : undefined,
    }));
  },
};
