/**
 * The PayGov adapter: the national public-service payment hub, modelled as an upstream hub with
 * the same port as the intermediaries (create → redirect → notification → query → refund →
 * reconciliation). Every field and code is in protocol.ts with its assumptions written down.
 * Credentials: partner_code, secret, endpoint.
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
  token,
} from '../adapter-kit.js';
import { CODES, NOTIFY_ANSWERS, PATHS, parsePgTime, pgOutcome, pgSign, pgTime, pgVerify } from './protocol.js';

const cred = (ctx: AdapterContext, name: string) => credential(ctx, 'PayGov', name);
const call = (ctx: AdapterContext, path: string, body: Record<string, unknown>) =>
  postJson(ctx, 'PayGov', `${cred(ctx, 'endpoint')}${path}`, pgSign(cred(ctx, 'secret'), body), Number(ctx.credentials.timeout_ms ?? 30_000));
const stamp = (ctx: AdapterContext) => pgTime(ctx.clock.now());
/** Every free text we sign (the checksum joins `k=v&` raw, arrays as JSON): unable to frame a field. */
const text = (s: string) => signableText(s, 255) || '-';

/** The fields of the hub's notification and browser return (assumption A7): nothing else is believed. */
const RESULT_FIELDS: readonly string[] = [
  'partnerCode',
  'orderId',
  'transactionId',
  'amount',
  'status',
  'bankCode',
  'paidAt',
  'timestamp',
  'message',
  'checksum',
];
const STATUSES: readonly string[] = ['SUCCESS', 'FAILED', 'CANCELLED', 'PENDING'];
const PG_TIME = /^[0-9]{14}$/;

/**
 * A hub result, believed when its checksum verifies and every field is one the hub sends, a
 * scalar in its documented shape: the checksum joins `k=v` raw over whatever fields are there,
 * so an unknown field, a nested value or a value carrying `&`/`=` could re-frame a genuine
 * checksum. Our partner code must come back; the message is dated by its `timestamp`.
 */
function verifyFields(ctx: AdapterContext, f: Record<string, unknown>, kind: 'notify' | 'return'): VerifyResult {
  if (!pgVerify(cred(ctx, 'secret'), f)) return { ok: false, reason: 'signature', message: 'checksum does not verify' };
  if (f.partnerCode !== cred(ctx, 'partner_code')) return { ok: false, reason: 'signature', message: 'another partner' };
  const odd = Object.keys(f).find((k) => !RESULT_FIELDS.includes(k) || (typeof f[k] !== 'string' && typeof f[k] !== 'number'));
  if (odd) return malformed(`${odd} is not a field of a PayGov result, or not a scalar`);
  const orderId = typeof f.orderId === 'string' && /^[A-Za-z0-9_-]{1,50}$/.test(f.orderId) ? f.orderId : undefined;
  const amount = providerAmount(f.amount, FEEGATE_MAX_AMOUNT);
  if (!orderId || amount === undefined || typeof f.status !== 'string' || !STATUSES.includes(f.status)) {
    return malformed('orderId, amount or status missing or not in its documented shape');
  }
  if (f.transactionId !== undefined && f.transactionId !== '' && token(f.transactionId, 64) === undefined) return malformed('transactionId is not an id');
  if (f.bankCode !== undefined && f.bankCode !== '' && token(f.bankCode, 20) === undefined) return malformed('bankCode is not a code');
  if (f.paidAt !== undefined && f.paidAt !== '' && !(typeof f.paidAt === 'string' && PG_TIME.test(f.paidAt))) return malformed('paidAt is not yyyyMMddHHmmss');
  if (f.message !== undefined && safeText(f.message, 255) === undefined) return malformed('message carries separators or control characters');
  if (typeof f.timestamp !== 'string' || !PG_TIME.test(f.timestamp)) return malformed('timestamp is not yyyyMMddHHmmss');
  const future = futureDated(ctx, parsePgTime(f.timestamp), 'timestamp');
  if (future) return future;
  const txn = typeof f.transactionId === 'string' && f.transactionId ? f.transactionId : `${orderId}#0`;
  return {
    ok: true,
    notification: {
      reference: orderId,
      providerTxnId: txn,
      eventType: `${kind}.${f.status}`,
      outcome: pgOutcome(f.status),
      amount,
      currency: 'VND',
      code: f.status,
      message: String(f.message ?? ''),
      payload: f,
    },
  };
}

export const paygovAdapter: PaymentAdapter = {
  id: 'paygov',
  displayName: 'Cổng thanh toán quốc gia (PayGov)',
  sandbox: false,
  notifyMethod: 'POST',
  checkoutFlow: 'remote',
  /** No public specification (protocol.ts): ours until the hub's package says otherwise. */
  maxAmount: FEEGATE_MAX_AMOUNT,
  credentialFields: [
    { name: 'partner_code', secret: false },
    { name: 'secret', secret: true },
    { name: 'endpoint', secret: false },
  ],

  async createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult> {
    const d = req.details;
    const res = await call(ctx, PATHS.create, {
      partnerCode: cred(ctx, 'partner_code'),
      requestId: `C${req.reference}`,
      orderId: req.reference,
      amount: req.amount,
      currency: 'VND',
      description: text(req.description),
      dossierCode: d?.dossierCode ? text(d.dossierCode) : undefined,
      procedureCode: d?.procedureCode ? text(d.procedureCode) : undefined,
      payerName: d ? text(d.payerName) : undefined,
      feeItems: (d?.items ?? [{ code: 'FEE', name: req.description, amount: req.amount }]).map((i) => ({
        code: text(i.code),
        name: text(i.name),
        amount: i.amount,
      })),
      returnUrl: signableUrl(req.returnUrl),
      notifyUrl: signableUrl(req.notifyUrl),
      expireAt: pgTime(req.expiresAt),
      timestamp: stamp(ctx),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.ok && typeof res.paymentUrl === 'string') {
      return {
        outcome: 'pending',
        checkout: { type: 'redirect', url: res.paymentUrl },
        providerTxnId: typeof res.transactionId === 'string' ? res.transactionId : undefined,
      };
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
      partnerCode: cred(ctx, 'partner_code'),
      requestId: `Q${crypto.randomBytes(8).toString('hex')}`,
      orderId: q.reference,
      timestamp: stamp(ctx),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.notFound) return { outcome: 'unknown', notFound: true, code: '01', message: String(res.message ?? 'order not found') };
    if (res.code !== CODES.ok) return { outcome: 'unknown', code: String(res.code), message: String(res.message ?? '') };
    const amount = res.amount === undefined ? undefined : providerAmount(res.amount, FEEGATE_MAX_AMOUNT);
    if (res.amount !== undefined && amount === undefined) return { outcome: 'unknown', message: 'PayGov answered a query with a malformed amount' };
    return {
      outcome: pgOutcome(res.status),
      amount,
      providerTxnId: typeof res.transactionId === 'string' ? res.transactionId : undefined,
      code: String(res.status),
    };
  },

  async refund(ctx: AdapterContext, req: RefundRequest): Promise<RefundResult> {
    const res = await call(ctx, PATHS.refund, {
      partnerCode: cred(ctx, 'partner_code'),
      requestId: req.refundReference,
      orderId: req.paymentReference,
      transactionId: req.providerTxnId ?? '',
      amount: req.amount,
      reason: text(req.reason),
      timestamp: stamp(ctx),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.ok) return { outcome: 'succeeded', providerRefundId: String(res.refundTransactionId ?? ''), code: '00' };
    if (res.code === CODES.system || typeof res.code !== 'string') return { outcome: 'unknown', code: String(res.code), message: String(res.message ?? '') };
    return { outcome: 'failed', code: String(res.code), message: String(res.message ?? 'refund refused') };
  },

  /** Assumption A9 (protocol.ts): the hub's refund query by our refund reference. */
  async queryRefund(ctx: AdapterContext, q: RefundQuery): Promise<RefundStatus> {
    const res = await call(ctx, PATHS.refundQuery, {
      partnerCode: cred(ctx, 'partner_code'),
      requestId: q.refundReference,
      timestamp: stamp(ctx),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.notFound) return { outcome: 'unknown', notFound: true, code: CODES.notFound, message: 'the hub has no such refund' };
    if (res.code !== CODES.ok) return { outcome: 'unknown', code: String(res.code), message: String(res.message ?? '') };
    if (Number(res.amount) !== q.amount)
      return { outcome: 'unknown', code: '00', message: `the hub has this refund for ${String(res.amount)} VND, not ${q.amount}` };
    const id = res.refundTransactionId === undefined ? undefined : String(res.refundTransactionId);
    if (res.status === 'SUCCESS') return { outcome: 'succeeded', providerRefundId: id, code: '00' };
    if (res.status === 'PENDING') return { outcome: 'pending', providerRefundId: id, code: '00' };
    if (res.status === 'FAILED') return { outcome: 'failed', code: '00', message: String(res.message ?? 'refund failed') };
    return { outcome: 'unknown', code: '00', message: `refund status ${String(res.status)}` };
  },

  /** Assumption A10 (protocol.ts). */
  parseSettlement(content: string): SettlementLine[] {
    return parseSettlementCsv(content, (r) => ({
      providerRef: r.transactionId,
      ourRef: r.orderId,
      amount: r.amount,
      fee: r.fee,
      occurredAt: parsePgTime(r.paidAt ?? ''),
      status: r.status === 'SUCCESS' ? 'succeeded' : undefined,
    }));
  },
};
