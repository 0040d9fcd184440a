/**
 * The PayGov adapter: the national public-service payment hub, modelled as an upstream hub with
 * the same port as the intermediaries (create → redirect → notification → query → refund →
 * reconciliation). Every field and code is in protocol.ts with its assumptions written down.
 * Credentials: partner_code, secret, endpoint.
 */
import crypto from 'node:crypto';
import type {
  AdapterContext, AnswerKind, CallbackAnswer, CheckoutRequest, CheckoutResult, InboundHttp, PaymentAdapter,
  RefundQuery, RefundRequest, RefundResult, RefundStatus, SettlementLine, StatusQuery, StatusResult, VerifyResult,
} from '../contract.js';
import { credential, firstValue, jsonObject, parseSettlementCsv, postJson } from '../adapter-kit.js';
import { CODES, NOTIFY_ANSWERS, PATHS, parsePgTime, pgOutcome, pgSign, pgTime, pgVerify } from './protocol.js';

const cred = (ctx: AdapterContext, name: string) => credential(ctx, 'PayGov', name);
const call = (ctx: AdapterContext, path: string, body: Record<string, unknown>) =>
  postJson(ctx, 'PayGov', `${cred(ctx, 'endpoint')}${path}`, pgSign(cred(ctx, 'secret'), body), Number(ctx.credentials.timeout_ms ?? 30_000));
const stamp = (ctx: AdapterContext) => pgTime(ctx.clock.now());

function verifyFields(ctx: AdapterContext, f: Record<string, unknown>, kind: 'notify' | 'return'): VerifyResult {
  if (!pgVerify(cred(ctx, 'secret'), f)) return { ok: false, reason: 'signature', message: 'checksum does not verify' };
  if (f.partnerCode !== cred(ctx, 'partner_code')) return { ok: false, reason: 'signature', message: 'another partner' };
  const amount = Number(f.amount);
  if (typeof f.orderId !== 'string' || !f.orderId || !Number.isSafeInteger(amount) || typeof f.status !== 'string') {
    return { ok: false, reason: 'malformed', message: 'orderId, amount or status missing' };
  }
  const txn = typeof f.transactionId === 'string' && f.transactionId ? f.transactionId : `${f.orderId}#0`;
  return {
    ok: true,
    notification: {
      reference: f.orderId, providerTxnId: txn, eventType: `${kind}.${f.status}`, outcome: pgOutcome(f.status), amount, currency: 'VND',
      code: String(f.status), message: String(f.message ?? ''), payload: f,
    },
  };
}

export const paygovAdapter: PaymentAdapter = {
  id: 'paygov',
  displayName: 'Cổng thanh toán quốc gia (PayGov)',
  sandbox: false,
  notifyMethod: 'POST',
  checkoutFlow: 'remote',
  credentialFields: [{ name: 'partner_code', secret: false }, { name: 'secret', secret: true }, { name: 'endpoint', secret: false }],

  async createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult> {
    const d = req.details;
    const res = await call(ctx, PATHS.create, {
      partnerCode: cred(ctx, 'partner_code'), requestId: `C${req.reference}`, orderId: req.reference, amount: req.amount, currency: 'VND',
      description: req.description.slice(0, 255), dossierCode: d?.dossierCode ?? undefined, procedureCode: d?.procedureCode ?? undefined,
      payerName: d?.payerName, feeItems: d?.items ?? [{ code: 'FEE', name: req.description.slice(0, 255), amount: req.amount }],
      returnUrl: req.returnUrl, notifyUrl: req.notifyUrl, expireAt: pgTime(req.expiresAt), timestamp: stamp(ctx),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.ok && typeof res.paymentUrl === 'string') {
      return { outcome: 'pending', checkout: { type: 'redirect', url: res.paymentUrl }, providerTxnId: typeof res.transactionId === 'string' ? res.transactionId : undefined };
    }
    if (res.code === CODES.system || typeof res.code !== 'string') return { outcome: 'unknown', message: String(res.message ?? 'PayGov system error') };
    // 03, duplicate orderId (A6): the hub has this order already; ask (query), never book it failed.
    if (res.code === CODES.duplicate) return { outcome: 'unknown', message: 'PayGov already has this order (03)' };
    return { outcome: 'failed', code: `paygov_${res.code}`, message: String(res.message ?? 'refused by PayGov') };
  },

  peekReference(msg: InboundHttp): string | null {
    if (msg.method === 'GET') return firstValue(msg.query.orderId) ?? null;
    const b = jsonObject(msg.rawBody);
    return typeof b?.orderId === 'string' ? b.orderId : null;
  },

  verifyNotification(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    const body = jsonObject(msg.rawBody);
    if (!body) return { ok: false, reason: 'malformed', message: 'body is not a JSON object' };
    return verifyFields(ctx, body, 'notify');
  },

  verifyReturn(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    const f: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(msg.query)) f[k] = firstValue(v);
    return verifyFields(ctx, f, 'return');
  },

  answer(kind: AnswerKind): CallbackAnswer {
    return { status: 200, contentType: 'application/json', body: JSON.stringify(NOTIFY_ANSWERS[kind]) };
  },

  async queryStatus(ctx: AdapterContext, q: StatusQuery): Promise<StatusResult> {
    const res = await call(ctx, PATHS.query, {
      partnerCode: cred(ctx, 'partner_code'), requestId: `Q${crypto.randomBytes(8).toString('hex')}`, orderId: q.reference, timestamp: stamp(ctx),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.notFound) return { outcome: 'unknown', notFound: true, code: '01', message: String(res.message ?? 'order not found') };
    if (res.code !== CODES.ok) return { outcome: 'unknown', code: String(res.code), message: String(res.message ?? '') };
    return {
      outcome: pgOutcome(res.status), amount: res.amount === undefined ? undefined : Number(res.amount),
      providerTxnId: typeof res.transactionId === 'string' ? res.transactionId : undefined, code: String(res.status),
    };
  },

  async refund(ctx: AdapterContext, req: RefundRequest): Promise<RefundResult> {
    const res = await call(ctx, PATHS.refund, {
      partnerCode: cred(ctx, 'partner_code'), requestId: req.refundReference, orderId: req.paymentReference, transactionId: req.providerTxnId ?? '',
      amount: req.amount, reason: req.reason.slice(0, 255), timestamp: stamp(ctx),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.ok) return { outcome: 'succeeded', providerRefundId: String(res.refundTransactionId ?? ''), code: '00' };
    if (res.code === CODES.system || typeof res.code !== 'string') return { outcome: 'unknown', code: String(res.code), message: String(res.message ?? '') };
    return { outcome: 'failed', code: String(res.code), message: String(res.message ?? 'refund refused') };
  },

  /** Assumption A9 (protocol.ts): the hub's refund query by our refund reference. */
  async queryRefund(ctx: AdapterContext, q: RefundQuery): Promise<RefundStatus> {
    const res = await call(ctx, PATHS.refundQuery, {
      partnerCode: cred(ctx, 'partner_code'), requestId: q.refundReference, timestamp: stamp(ctx),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.notFound) return { outcome: 'unknown', notFound: true, code: CODES.notFound, message: 'the hub has no such refund' };
    if (res.code !== CODES.ok) return { outcome: 'unknown', code: String(res.code), message: String(res.message ?? '') };
    if (Number(res.amount) !== q.amount) return { outcome: 'unknown', code: '00', message: `the hub has this refund for ${String(res.amount)} VND, not ${q.amount}` };
    const id = res.refundTransactionId === undefined ? undefined : String(res.refundTransactionId);
    if (res.status === 'SUCCESS') return { outcome: 'succeeded', providerRefundId: id, code: '00' };
    if (res.status === 'PENDING') return { outcome: 'pending', providerRefundId: id, code: '00' };
    if (res.status === 'FAILED') return { outcome: 'failed', code: '00', message: String(res.message ?? 'refund failed') };
    return { outcome: 'unknown', code: '00', message: `refund status ${String(res.status)}` };
  },

  /** Assumption A10 (protocol.ts). */
  parseSettlement(content: string): SettlementLine[] {
    return parseSettlementCsv(content, (r) => ({
      providerRef: r.transactionId, ourRef: r.orderId, amount: r.amount, fee: r.fee,
      occurredAt: parsePgTime(r.paidAt ?? ''), status: r.status === 'SUCCESS' ? 'succeeded' : undefined,
    }));
  },
};
