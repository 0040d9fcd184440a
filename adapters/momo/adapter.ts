/**
 * The MoMo adapter (API v2, captureWallet). Checkout is created by a signed call to MoMo, which
 * answers payUrl / deeplink / qrCodeUrl; the IPN is a signed JSON POST we answer with HTTP 204;
 * query and refund are signed JSON POSTs. Credentials: partner_code, access_key, secret_key, endpoint.
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
  credential,
  digits,
  firstValue,
  futureDated,
  jsonObject,
  malformed,
  parseSettlementCsv,
  postJson,
  providerAmount,
  safeText,
  signableText,
  signableUrl,
} from '../adapter-kit.js';
import { CREATE_KEYS, IPN_KEYS, ORDER_ID, QUERY_KEYS, REFUND_KEYS, momoOutcome, momoSign, momoVerify } from './protocol.js';

const one = firstValue;
const cred = (ctx: AdapterContext, name: string) => credential(ctx, 'MoMo', name);
/**
 * MoMo's "duplicated requestId" (40) and "duplicated orderId" (41): MoMo has a request with our
 * stable id already, so its outcome is asked for (query), never booked as a failure.
 */
const DUPLICATE = new Set([40, 41]);
/** MoMo asks clients to wait at least 30 s. */
const call = (ctx: AdapterContext, path: string, body: Record<string, unknown>) =>
  postJson(ctx, 'MoMo', `${cred(ctx, 'endpoint')}/v2/gateway/api/${path}`, body, Number(ctx.credentials.timeout_ms ?? 30_000));

/** MoMo's documented orderType and payType values (an empty payType comes with results that were never paid). */
export const ORDER_TYPES: readonly string[] = ['momo_wallet'];
export const PAY_TYPES: readonly string[] = ['', 'qr', 'webApp', 'app', 'miniapp', 'credit', 'napas'];
/** MoMo's wallet limit (captureWallet, shared/docs/payment-protocols.md §2). */
export const MOMO_MAX_AMOUNT = 50_000_000;

/**
 * A MoMo result (IPN or return), believed only when its signature verifies AND every signed field
 * has its documented shape: MoMo joins the fields raw, so a value carrying `&` or `=` could have
 * been cut from a neighbour (issue 10: a cancel re-split into a success). With every value free of
 * separators the signed string parses one way only, and the fields are exactly those MoMo signed.
 * What we sent must come back as we sent it: requestId is our reference, extraData is empty.
 */
function verifyFields(ctx: AdapterContext, f: Record<string, unknown>, kind: 'ipn' | 'return'): VerifyResult {
  const withKey = { ...f, accessKey: cred(ctx, 'access_key') };
  if (!momoVerify(cred(ctx, 'secret_key'), withKey, IPN_KEYS)) return { ok: false, reason: 'signature', message: 'signature does not verify' };
  if (f.partnerCode !== cred(ctx, 'partner_code')) return { ok: false, reason: 'signature', message: 'another partner' };
  const orderId = typeof f.orderId === 'string' && ORDER_ID.test(f.orderId) && f.orderId.length <= 50 ? f.orderId : undefined;
  if (!orderId) return malformed('orderId is not one of our references');
  if (f.requestId !== orderId) return malformed('requestId is not the one we sent');
  if (f.extraData !== '') return malformed('extraData is not the one we sent (empty)');
  const amount = providerAmount(f.amount, MOMO_MAX_AMOUNT);
  if (amount === undefined) return malformed("amount is not a whole number of VND within MoMo's limit");
  const code = digits(f.resultCode, 6),
    transId = digits(f.transId, 20),
    responseTime = digits(f.responseTime, 16);
  if (code === undefined || transId === undefined || responseTime === undefined) return malformed('resultCode, transId or responseTime is not digits');
  if (typeof f.orderType !== 'string' || !ORDER_TYPES.includes(f.orderType)) return malformed('orderType is not one MoMo documents');
  if (typeof f.payType !== 'string' || !PAY_TYPES.includes(f.payType)) return malformed('payType is not one MoMo documents');
  if (safeText(f.orderInfo, 255) === undefined) return malformed('orderInfo is not text we could have sent');
  const message = safeText(f.message, 255);
  if (message === undefined) return malformed('message carries separators or control characters');
  const future = futureDated(ctx, new Date(Number(responseTime)), 'responseTime');
  if (future) return future;
  const resultCode = Number(code);
  return {
    ok: true,
    notification: {
      reference: orderId,
      providerTxnId: /^0+$/.test(transId) ? `${orderId}#0` : transId,
      eventType: `${kind}.${resultCode}`,
      outcome: momoOutcome(resultCode),
      amount,
      currency: 'VND',
      code: String(resultCode),
      message,
      payload: f as Record<string, unknown>,
    },
  };
}

/** MoMo's query (`/v2/gateway/api/query`) of one orderId. */
function queryOrder(ctx: AdapterContext, orderId: string) {
  const body: Record<string, unknown> = {
    partnerCode: cred(ctx, 'partner_code'),
    accessKey: cred(ctx, 'access_key'),
    requestId: `Q${crypto.randomBytes(8).toString('hex')}`,
    orderId,
    lang: 'vi',
  };
  body.signature = momoSign(cred(ctx, 'secret_key'), body, QUERY_KEYS);
  return call(ctx, 'query', body);
}

export const momoAdapter: PaymentAdapter = {
  id: 'momo',
  displayName: 'MoMo',
  sandbox: false,
  notifyMethod: 'POST',
  checkoutFlow: 'remote',
  maxAmount: MOMO_MAX_AMOUNT,
  credentialFields: [
    { name: 'partner_code', secret: false },
    { name: 'access_key', secret: true },
    { name: 'secret_key', secret: true },
    { name: 'endpoint', secret: false },
  ],

  async createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult> {
    const body: Record<string, unknown> = {
      partnerCode: cred(ctx, 'partner_code'),
      accessKey: cred(ctx, 'access_key'),
      requestId: req.reference,
      amount: req.amount,
      orderId: req.reference,
      orderInfo: signableText(req.description, 255) || req.reference,
      redirectUrl: signableUrl(req.returnUrl),
      ipnUrl: signableUrl(req.notifyUrl),
      requestType: 'captureWallet',
      extraData: '',
      lang: 'vi',
    };
    body.signature = momoSign(cred(ctx, 'secret_key'), body, CREATE_KEYS);
    const res = await call(ctx, 'create', body);
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    const code = Number(res.resultCode);
    if (code === 0 && typeof res.payUrl === 'string') {
      return {
        outcome: 'pending',
        checkout: { type: 'redirect', url: res.payUrl, deeplink: res.deeplink as string | undefined, qr_payload: res.qrCodeUrl as string | undefined },
      };
    }
    if (code === 99 || code === 10 || !Number.isInteger(code)) return { outcome: 'unknown', message: String(res.message ?? 'MoMo system error') };
    if (DUPLICATE.has(code)) return { outcome: 'unknown', message: `MoMo already has this order (${code}): asked about, not failed` };
    return { outcome: 'failed', code: `momo_${code}`, message: String(res.message ?? 'refused by MoMo') };
  },

  peekReference(msg: InboundHttp): string | null {
    if (msg.method === 'GET') return one(msg.query.orderId) ?? null;
    const b = jsonObject(msg.rawBody);
    return typeof b?.orderId === 'string' ? b.orderId : null;
  },

  verifyNotification(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    const body = jsonObject(msg.rawBody);
    if (!body) return { ok: false, reason: 'malformed', message: 'body is not a JSON object' };
    return verifyFields(ctx, body, 'ipn');
  },

  verifyReturn(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    const f: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(msg.query)) f[k] = one(v);
    return verifyFields(ctx, f, 'return');
  },

  /** MoMo wants 204 for a notification it may stop sending; refusals are told apart by status. */
  answer(kind: AnswerKind): CallbackAnswer {
    if (kind === 'ok' || kind === 'already_confirmed') return { status: 204 };
    const status = kind === 'unknown_order' ? 404 : kind === 'error' ? 500 : 400;
    return { status, contentType: 'application/json', body: JSON.stringify({ message: kind }) };
  },

  async queryStatus(ctx: AdapterContext, q: StatusQuery): Promise<StatusResult> {
    const res = await queryOrder(ctx, q.reference);
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    const code = Number(res.resultCode);
    if (code === 42) return { outcome: 'unknown', notFound: true, code: '42', message: String(res.message ?? 'order not found') };
    const amount = res.amount === undefined ? undefined : providerAmount(res.amount, MOMO_MAX_AMOUNT);
    const transId = res.transId === undefined ? undefined : digits(res.transId);
    if ((res.amount !== undefined && amount === undefined) || (res.transId !== undefined && transId === undefined) || !Number.isInteger(code)) {
      return { outcome: 'unknown', message: 'MoMo answered a query with a malformed amount, transId or resultCode' };
    }
    return { outcome: momoOutcome(code), amount, providerTxnId: transId && !/^0+$/.test(transId) ? transId : undefined, code: String(code) };
  },

  /** MoMo lists a payment's refunds in the query's `refundTrans`, each under the refund's own orderId. */
  async queryRefund(ctx: AdapterContext, q: RefundQuery): Promise<RefundStatus> {
    const res = await queryOrder(ctx, q.paymentReference);
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (Number(res.resultCode) === 42 || !Array.isArray(res.refundTrans))
      return { outcome: 'unknown', code: String(res.resultCode), message: String(res.message ?? 'no refund list') };
    const r = (res.refundTrans as Record<string, unknown>[]).find((x) => x.orderId === q.refundReference);
    if (!r) return { outcome: 'unknown', notFound: true, message: 'MoMo lists no refund with this orderId' };
    if (Number(r.amount) !== q.amount)
      return { outcome: 'unknown', code: String(r.resultCode), message: `MoMo lists this refund for ${String(r.amount)} VND, not ${q.amount}` };
    const code = Number(r.resultCode);
    if (code === 0) return { outcome: 'succeeded', providerRefundId: String(r.transId ?? ''), code: '0' };
    if (code === 7000 || code === 7002 || code === 1000) return { outcome: 'pending', code: String(code) };
    if (code === 99 || !Number.isInteger(code)) return { outcome: 'unknown', code: String(r.resultCode) };
    return { outcome: 'failed', code: String(code), message: 'MoMo reports the refund failed' };
  },

  async refund(ctx: AdapterContext, req: RefundRequest): Promise<RefundResult> {
    const body: Record<string, unknown> = {
      partnerCode: cred(ctx, 'partner_code'),
      accessKey: cred(ctx, 'access_key'),
      orderId: req.refundReference,
      requestId: req.refundReference,
      amount: req.amount,
      transId: req.providerTxnId ?? '',
      lang: 'vi',
      description: signableText(req.reason, 255),
    };
    body.signature = momoSign(cred(ctx, 'secret_key'), body, REFUND_KEYS);
    const res = await call(ctx, 'refund', body);
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    const code = Number(res.resultCode);
    if (code === 0) return { outcome: 'succeeded', providerRefundId: String(res.transId ?? ''), code: '0' };
    if (code === 7000 || code === 7002) return { outcome: 'pending', code: String(code) };
    if (code === 99 || !Number.isInteger(code)) return { outcome: 'unknown', code: String(res.resultCode), message: String(res.message ?? '') };
    if (DUPLICATE.has(code)) return { outcome: 'unknown', code: String(code), message: 'MoMo already has this refund request: asked about, not failed' };
    return { outcome: 'failed', code: String(code), message: String(res.message ?? 'refund refused') };
  },

  /**
   * Assumed layout (MoMo's reconciliation export is not public; adjust here when a real one is at
   * hand): CSV header `orderId,transId,amount,fee,responseTime,resultCode`, amounts in VND,
   * responseTime in ms since the epoch, resultCode 0 (paid).
   */
  parseSettlement(content: string): SettlementLine[] {
    return parseSettlementCsv(content, (r) => ({
      providerRef: r.transId,
      ourRef: r.orderId,
      amount: r.amount,
      fee: r.fee,
      occurredAt: /^[0-9]{1,16}$/.test(r.responseTime ?? '') ? new Date(Number(r.responseTime)) : undefined,
      status: r.resultCode === '0' ? 'succeeded' : undefined,
    }));
  },
};
