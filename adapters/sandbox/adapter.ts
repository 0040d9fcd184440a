/**
 * The sandbox adapters: they speak adapters/sandbox/protocol.ts to the sandbox simulator and are
 * the reference implementations of the adapter contract, one per checkout archetype:
 * - `sandbox`: the checkout is a redirect URL we sign ourselves (like VNPay and PayGov); nothing
 *   exists at the provider until the payer arrives. The provider `npm start` uses.
 * - `sandbox_api`: the checkout is created by a signed call to the provider (like MoMo and
 *   ZaloPay), which can fail, time out or answer nonsense.
 */
import type {
  AdapterContext,
  AnswerKind,
  CallbackAnswer,
  CheckoutRequest,
  CheckoutResult,
  InboundHttp,
  Outcome,
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
  digits,
  firstValue as first,
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
import { CODES, SANDBOX_MERCHANT, canonicalString, verify, withSignature, type Fields } from './protocol.js';

/** A callback older than this is refused as a replay (duplicates inside it are deduplicated). */
export const CALLBACK_TOLERANCE_SECONDS = 24 * 3600;
export const SANDBOX_TIMEOUT_MS = 5_000;

const STATUS_OUTCOME: Record<string, Outcome> = {
  SUCCESS: 'succeeded',
  PENDING: 'pending',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
};

function base(ctx: AdapterContext): string {
  return (ctx.credentials.base_url ?? ctx.publicUrl).replace(/\/$/, '');
}

function secretOf(ctx: AdapterContext): string {
  const s = ctx.credentials.secret;
  if (!s) throw new Error('sandbox credentials have no secret');
  return s;
}

function timeoutMs(ctx: AdapterContext): number {
  return Number(ctx.credentials.timeout_ms ?? SANDBOX_TIMEOUT_MS);
}

/** Calls the simulator's JSON API; `{ unknown }` when we cannot know what happened. */
async function call(ctx: AdapterContext, path: string, fields: Fields): Promise<Record<string, unknown> | { unknown: string }> {
  const body = await postJson(ctx, 'the sandbox', `${base(ctx)}/sandbox/api/${path}`, withSignature(fields, secretOf(ctx)), timeoutMs(ctx));
  if ('unknown' in body) return { unknown: String(body.unknown) };
  // Refusals of a bad request may come unsigned; results must verify.
  if (body.code !== CODES.badRequest && body.code !== CODES.badSignature && !verify(body as Fields, secretOf(ctx))) {
    return { unknown: 'answer signature does not verify' };
  }
  return body;
}

/** The fields of the sandbox's callback and return: nothing else is believed. */
const MESSAGE_FIELDS: readonly string[] = ['merchant', 'reference', 'txn_id', 'status', 'code', 'amount', 'currency', 'paid_at', 'ts', 'sig'];
const MESSAGE_CODES: readonly string[] = Object.values(CODES);

/**
 * A sandbox callback or return: signature first, then every field one the protocol has, in its
 * shape (the sandbox form-encodes what it signs, but a provider's message is believed only
 * whole), our merchant echoed, dated by `ts`: neither older than the tolerance nor in the future.
 */
function parseMessage(ctx: AdapterContext, fields: Record<string, unknown>, kind: 'callback' | 'return'): VerifyResult {
  const required = ['merchant', 'reference', 'txn_id', 'status', 'amount', 'currency', 'ts', 'sig'];
  for (const k of required) {
    if (typeof fields[k] !== 'string' && typeof fields[k] !== 'number') return malformed(`missing field ${k}`);
  }
  const flat: Fields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v !== 'string' && typeof v !== 'number') return malformed(`field ${k} is not a scalar`);
    flat[k] = v;
  }
  if (!verify(flat, secretOf(ctx))) return { ok: false, reason: 'signature', message: 'signature does not verify' };
  const odd = Object.keys(flat).find((k) => !MESSAGE_FIELDS.includes(k));
  if (odd) return malformed(`${odd} is not a field of a sandbox message`);
  if (flat.merchant !== (ctx.credentials.merchant ?? SANDBOX_MERCHANT)) return { ok: false, reason: 'signature', message: 'another merchant' };
  const reference = token(flat.reference, 64),
    txnId = token(flat.txn_id, 64);
  const status = String(flat.status);
  if (!reference || !txnId || !(status in STATUS_OUTCOME)) return malformed('reference, txn_id or status is not in its documented shape');
  if (flat.code !== undefined && !MESSAGE_CODES.includes(String(flat.code))) return malformed('code is not one the sandbox documents');
  // The currency is an ISO code; that it is the payment's is the gateway's integrity check (amount_mismatch).
  if (!/^[A-Z]{3}$/.test(String(flat.currency))) return malformed('currency is not an ISO 4217 code');
  if (flat.paid_at !== undefined && digits(flat.paid_at, 12) === undefined) return malformed('paid_at is not digits');
  const amount = providerAmount(flat.amount, FEEGATE_MAX_AMOUNT);
  if (amount === undefined) return malformed('amount is not an integer');
  const ts = digits(flat.ts, 12);
  const age = ctx.clock.now().getTime() / 1000 - Number(ts);
  if (ts === undefined || age > CALLBACK_TOLERANCE_SECONDS) {
    return { ok: false, reason: 'stale', message: `message timestamp ${flat.ts} is outside the accepted window` };
  }
  const future = futureDated(ctx, new Date(Number(ts) * 1000), 'ts');
  if (future) return future;
  return {
    ok: true,
    notification: {
      reference,
      providerTxnId: txnId,
      eventType: `${kind}.${status}`,
      outcome: STATUS_OUTCOME[status]!,
      amount,
      currency: String(flat.currency),
      code: typeof flat.code === 'string' ? flat.code : undefined,
      payload: flat,
    },
  };
}

function orderFields(ctx: AdapterContext, req: CheckoutRequest): Fields {
  return {
    merchant: ctx.credentials.merchant ?? SANDBOX_MERCHANT,
    reference: req.reference,
    amount: req.amount,
    currency: req.currency,
    description: signableText(req.description, 200) || req.reference,
    return_url: signableUrl(req.returnUrl),
    notify_url: signableUrl(req.notifyUrl),
    expires_at: Math.floor(req.expiresAt.getTime() / 1000),
    ts: Math.floor(ctx.clock.now().getTime() / 1000),
  };
}

/** What both sandbox adapters share: verification, answers, query, refund, settlement. */
const common: Omit<PaymentAdapter, 'id' | 'displayName' | 'checkoutFlow' | 'createCheckout'> = {
  sandbox: true,
  maxAmount: FEEGATE_MAX_AMOUNT,
  credentialFields: [
    { name: 'secret', secret: true },
    { name: 'merchant', secret: false, optional: true },
    { name: 'base_url', secret: false, optional: true },
  ],
  notifyMethod: 'POST',

  peekReference(msg: InboundHttp): string | null {
    if (msg.method === 'GET') return first(msg.query.reference) ?? null;
    const body = jsonObject(msg.rawBody);
    return typeof body?.reference === 'string' ? body.reference : null;
  },

  verifyNotification(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    const body = jsonObject(msg.rawBody);
    if (!body) return { ok: false, reason: 'malformed', message: 'body is not a JSON object' };
    return parseMessage(ctx, body, 'callback');
  },

  verifyReturn(ctx: AdapterContext, msg: InboundHttp): VerifyResult {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(msg.query)) fields[k] = first(v);
    return parseMessage(ctx, fields, 'return');
  },

  answer(kind: AnswerKind): CallbackAnswer {
    const map: Record<AnswerKind, [string, string]> = {
      ok: [CODES.success, 'Confirm Success'],
      already_confirmed: [CODES.duplicate, 'Order already confirmed'],
      unknown_order: [CODES.notFound, 'Order not found'],
      amount_mismatch: [CODES.amountInvalid, 'Invalid amount'],
      bad_signature: [CODES.badSignature, 'Invalid signature'],
      malformed: [CODES.badRequest, 'Invalid request'],
      error: [CODES.systemError, 'Unknown error'],
    };
    const [code, message] = map[kind];
    return { status: 200, contentType: 'application/json', body: JSON.stringify({ code, message }) };
  },

  async queryStatus(ctx: AdapterContext, q: StatusQuery): Promise<StatusResult> {
    const res = await call(ctx, 'query', {
      merchant: ctx.credentials.merchant ?? SANDBOX_MERCHANT,
      reference: q.reference,
      ts: Math.floor(ctx.clock.now().getTime() / 1000),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.notFound) return { outcome: 'unknown', notFound: true, code: String(res.code), message: 'order not found' };
    const outcome = STATUS_OUTCOME[String(res.status)] ?? 'unknown';
    const amount = res.amount === undefined ? undefined : providerAmount(res.amount, FEEGATE_MAX_AMOUNT);
    if (res.amount !== undefined && amount === undefined) return { outcome: 'unknown', message: 'the sandbox answered a query with a malformed amount' };
    return {
      outcome,
      amount,
      providerTxnId: res.txn_id ? String(res.txn_id) : undefined,
      code: String(res.code),
    };
  },

  async refund(ctx: AdapterContext, req: RefundRequest): Promise<RefundResult> {
    const res = await call(ctx, 'refund', {
      merchant: ctx.credentials.merchant ?? SANDBOX_MERCHANT,
      reference: req.paymentReference,
      refund_reference: req.refundReference,
      amount: req.amount,
      reason: signableText(req.reason, 200),
      ts: Math.floor(ctx.clock.now().getTime() / 1000),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    const code = String(res.code);
    if (code === CODES.success) return { outcome: 'succeeded', providerRefundId: String(res.refund_id), code };
    if (code === CODES.pending) return { outcome: 'pending', providerRefundId: String(res.refund_id), code };
    // A duplicate means the sandbox has a refund with this reference: ask, never book it failed.
    if (code === CODES.systemError || code === CODES.duplicate) return { outcome: 'unknown', code, message: String(res.message ?? '') };
    return { outcome: 'failed', code, message: String(res.message ?? 'refund refused') };
  },

  async queryRefund(ctx: AdapterContext, q: RefundQuery): Promise<RefundStatus> {
    const res = await call(ctx, 'refund/query', {
      merchant: ctx.credentials.merchant ?? SANDBOX_MERCHANT,
      reference: q.paymentReference,
      refund_reference: q.refundReference,
      ts: Math.floor(ctx.clock.now().getTime() / 1000),
    });
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    const code = String(res.code);
    if (code === CODES.notFound) return { outcome: 'unknown', notFound: true, code, message: String(res.message ?? 'refund not found') };
    if (code === CODES.success) return { outcome: 'succeeded', providerRefundId: String(res.refund_id), code };
    if (code === CODES.pending) return { outcome: 'pending', providerRefundId: String(res.refund_id), code };
    if (code === CODES.failed) return { outcome: 'failed', code, message: String(res.message ?? 'refund refused') };
    return { outcome: 'unknown', code, message: String(res.message ?? '') };
  },

  /**
   * Sandbox settlement report: CSV with a header row
   * `txn_id,reference,amount,fee,paid_at,status` (paid_at ISO 8601, status SUCCESS|REFUNDED|FAILED).
   */
  parseSettlement(content: string): SettlementLine[] {
    return parseSettlementCsv(content, (r) => ({
      providerRef: r.txn_id,
      ourRef: r.reference,
      amount: r.amount,
      fee: r.fee,
      occurredAt: r.paid_at ? new Date(r.paid_at) : undefined,
      status: ({ SUCCESS: 'succeeded', REFUNDED: 'refunded', FAILED: 'failed' } as const)[r.status as 'SUCCESS'],
    }));
  },
};

/** The signed redirect checkout: computed here, no call to the provider. */
export const sandboxAdapter: PaymentAdapter = {
  ...common,
  id: 'sandbox',
  displayName: 'Sandbox (redirect checkout)',
  checkoutFlow: 'local',
  async createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult> {
    const fields = withSignature(orderFields(ctx, req), secretOf(ctx));
    const query = `${canonicalString(fields)}&sig=${fields.sig}`;
    return { outcome: 'pending', checkout: { type: 'redirect', url: `${base(ctx)}/sandbox/pay?${query}` } };
  },
};

/** The API checkout: a signed create call to the provider. */
export const sandboxApiAdapter: PaymentAdapter = {
  ...common,
  id: 'sandbox_api',
  displayName: 'Sandbox (API checkout)',
  checkoutFlow: 'remote',
  async createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult> {
    const res = await call(ctx, 'orders', orderFields(ctx, req));
    if ('unknown' in res) return { outcome: 'unknown', message: String(res.unknown) };
    if (res.code === CODES.success && typeof res.pay_url === 'string') {
      return { outcome: 'pending', checkout: { type: 'redirect', url: res.pay_url }, providerTxnId: String(res.txn_id ?? '') || undefined };
    }
    // A duplicate means the sandbox has an order with this reference: ask, never book it failed.
    if (res.code === CODES.systemError || res.code === CODES.duplicate || res.code === undefined)
      return { outcome: 'unknown', message: String(res.message ?? 'system error') };
    return { outcome: 'failed', code: `sandbox_${String(res.code)}`, message: String(res.message ?? 'refused') };
  },
};
