/**
 * The VNPay adapter (API 2.1.0). Checkout is a redirect URL we sign ourselves (no call to VNPay);
 * the IPN is a GET with the signed result; querydr and refund are signed JSON POSTs.
 * Credentials: tmn_code, hash_secret, pay_url, api_url.
 */
import crypto from 'node:crypto';
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
import { credential, digits, firstValue, futureDated, malformed, parseSettlementCsv, postJson, safeText, signableText, token } from '../adapter-kit.js';
import {
  IPN_ANSWERS,
  QUERY_REQUEST_FIELDS,
  RESPONSE_CODES,
  RESULT_FIELDS,
  TRANSACTION_STATUSES,
  VNPAY_MAX_AMOUNT,
  QUERY_RESPONSE_FIELDS,
  REFUND_REQUEST_FIELDS,
  REFUND_RESPONSE_FIELDS,
  VERSION,
  fieldsHash,
  fromVnpAmount,
  parseVnpDate,
  paymentOutcome,
  secureHash,
  signData,
  toVnpAmount,
  verifySecureHash,
  vnpDate,
} from './protocol.js';

const one = firstValue;
const cred = (ctx: AdapterContext, name: string) => credential(ctx, 'VNPay', name);

/** VNPay wants order info without diacritics or special characters (and none that could frame a signed field). */
export function orderInfo(text: string): string {
  return (
    signableText(
      text
        .normalize('NFD')
        .replace(/[\u0300-\u036f]/g, '')
        .replace(/đ/g, 'd')
        .replace(/Đ/g, 'D')
        .replace(/[^A-Za-z0-9 .,:_-]/g, ' '),
      255,
    ) || 'Thanh toan'
  );
}

/**
 * A VNPay result (return or IPN): the hash must verify, then every field must be one VNPay
 * documents, in its documented shape, and what we hold must come back: our terminal, one of our
 * references. VNPay form-encodes what it signs, so values cannot move its field boundaries; the
 * checks are there so that nothing odd is ever believed or stored.
 */
function verifyResult(ctx: AdapterContext, msg: InboundHttp, kind: 'ipn' | 'return'): VerifyResult {
  const p: Record<string, string> = {};
  for (const [k, v] of Object.entries(msg.query)) {
    const s = one(v);
    if (s !== undefined && k.startsWith('vnp_')) p[k] = s;
  }
  if (!verifySecureHash(p, cred(ctx, 'hash_secret'))) return { ok: false, reason: 'signature', message: 'vnp_SecureHash does not verify' };
  const odd = Object.keys(p).find((k) => !RESULT_FIELDS.includes(k));
  if (odd) return malformed(`${odd} is not a field of a VNPay result`);
  for (const f of ['vnp_TxnRef', 'vnp_Amount', 'vnp_ResponseCode', 'vnp_TmnCode', 'vnp_PayDate']) {
    if (!p[f]) return malformed(`missing ${f}`);
  }
  if (p.vnp_TmnCode !== cred(ctx, 'tmn_code')) return { ok: false, reason: 'signature', message: 'another terminal' };
  const reference = token(p.vnp_TxnRef, 100);
  if (!reference) return malformed('vnp_TxnRef is not one of our references');
  const amount = fromVnpAmount(p.vnp_Amount!);
  if (amount === undefined) return malformed('vnp_Amount is not a whole number of VND x 100 within the limit');
  if (!RESPONSE_CODES.includes(p.vnp_ResponseCode!)) return malformed('vnp_ResponseCode is not one VNPay documents');
  if (p.vnp_TransactionStatus !== undefined && !TRANSACTION_STATUSES.includes(p.vnp_TransactionStatus))
    return malformed('vnp_TransactionStatus is not one VNPay documents');
  if (p.vnp_TransactionNo !== undefined && digits(p.vnp_TransactionNo, 20) === undefined) return malformed('vnp_TransactionNo is not digits');
  for (const f of ['vnp_BankCode', 'vnp_BankTranNo', 'vnp_CardType'] as const) {
    if (p[f] !== undefined && token(p[f], 255) === undefined) return malformed(`${f} is not a code`);
  }
  if (p.vnp_OrderInfo !== undefined && safeText(p.vnp_OrderInfo, 255) === undefined) return malformed('vnp_OrderInfo is not text we could have sent');
  const future = futureDated(ctx, parseVnpDate(p.vnp_PayDate!), 'vnp_PayDate');
  if (future) return future;
  const status = p.vnp_TransactionStatus ?? (p.vnp_ResponseCode === '00' ? '00' : '02');
  const txn = p.vnp_TransactionNo && !/^0+$/.test(p.vnp_TransactionNo) ? p.vnp_TransactionNo : `${reference}#0`;
  return {
    ok: true,
    notification: {
      reference,
      providerTxnId: txn,
      eventType: `${kind}.${p.vnp_ResponseCode}.${status}`,
      outcome: paymentOutcome(p.vnp_ResponseCode!, status),
      amount,
      currency: 'VND',
      code: p.vnp_ResponseCode,
      payload: p,
    },
  };
}

async function api(
  ctx: AdapterContext,
  body: Record<string, string>,
  responseFields: readonly string[],
): Promise<Record<string, string> | { unknown: string }> {
  const res = await postJson(ctx, 'VNPay', cred(ctx, 'api_url'), body, Number(ctx.credentials.timeout_ms ?? 10_000));
  if ('unknown' in res) return { unknown: String(res.unknown) };
  const out = res as Record<string, string>;
  // Error answers (bad request, bad checksum) may come unsigned; results must verify.
  if (out.vnp_SecureHash !== undefined && fieldsHash(out, responseFields, cred(ctx, 'hash_secret')) !== String(out.vnp_SecureHash).toLowerCase()) {
    return { unknown: 'VNPay answer signature does not verify' };
  }
  return out;
}

/**
 * A query's vnp_RequestId is fresh (asking is harmless); a refund's is our stable refund reference, so
 * a repeat of it is VNPay's duplicate (94), never a second refund.
 */
function requestBase(ctx: AdapterContext, command: string, requestId = crypto.randomBytes(8).toString('hex')) {
  return {
    vnp_RequestId: requestId,
    vnp_Version: VERSION,
    vnp_Command: command,
    vnp_TmnCode: cred(ctx, 'tmn_code'),
    vnp_CreateDate: vnpDate(ctx.clock.now()),
    vnp_IpAddr: ctx.credentials.server_ip ?? '127.0.0.1',
  };
}

/** querydr of one payment (vnp_TransactionDate is the payment's own vnp_CreateDate). */
function querydr(ctx: AdapterContext, txnRef: string, createdAt: Date) {
  const body: Record<string, string> = {
    ...requestBase(ctx, 'querydr'),
    vnp_TxnRef: txnRef,
    vnp_OrderInfo: orderInfo(`Truy van ${txnRef}`),
    vnp_TransactionDate: vnpDate(createdAt),
  };
  body.vnp_SecureHash = fieldsHash(body, QUERY_REQUEST_FIELDS, cred(ctx, 'hash_secret'));
  return api(ctx, body, QUERY_RESPONSE_FIELDS);
}

const TXN_STATUS: Record<string, Outcome> = { '00': 'succeeded', '01': 'pending', '02': 'failed' };

export const vnpayAdapter: PaymentAdapter = {
  id: 'vnpay',
  displayName: 'VNPay',
  sandbox: false,
  notifyMethod: 'GET',
  checkoutFlow: 'local',
  maxAmount: VNPAY_MAX_AMOUNT,
  credentialFields: [
    { name: 'tmn_code', secret: false },
    { name: 'hash_secret', secret: true },
    { name: 'pay_url', secret: false },
    { name: 'api_url', secret: false },
    { name: 'server_ip', secret: false, optional: true },
  ],

  async createCheckout(ctx: AdapterContext, req: CheckoutRequest): Promise<CheckoutResult> {
    const params: Record<string, string> = {
      vnp_Version: VERSION,
      vnp_Command: 'pay',
      vnp_TmnCode: cred(ctx, 'tmn_code'),
      vnp_Amount: toVnpAmount(req.amount),
      vnp_CreateDate: vnpDate(req.createdAt),
      vnp_CurrCode: 'VND',
      vnp_IpAddr: req.clientIp ?? '127.0.0.1',
      vnp_Locale: 'vn',
      vnp_OrderInfo: orderInfo(req.description),
      vnp_OrderType: 'other',
      vnp_ReturnUrl: req.returnUrl,
      vnp_ExpireDate: vnpDate(req.expiresAt),
      vnp_TxnRef: req.reference,
    };
    const url = `${cred(ctx, 'pay_url')}?${signData(params)}&vnp_SecureHash=${secureHash(params, cred(ctx, 'hash_secret'))}`;
    return { outcome: 'pending', checkout: { type: 'redirect', url } };
  },

  peekReference: (msg) => one(msg.query.vnp_TxnRef) ?? null,
  verifyNotification: (ctx, msg) => verifyResult(ctx, msg, 'ipn'),
  verifyReturn: (ctx, msg) => verifyResult(ctx, msg, 'return'),

  answer(kind: AnswerKind): CallbackAnswer {
    return { status: 200, contentType: 'application/json', body: JSON.stringify(IPN_ANSWERS[kind]) };
  },

  async queryStatus(ctx: AdapterContext, q: StatusQuery): Promise<StatusResult> {
    const res = await querydr(ctx, q.reference, q.createdAt);
    if ('unknown' in res) return { outcome: 'unknown', message: res.unknown };
    if (res.vnp_ResponseCode === '91') return { outcome: 'unknown', notFound: true, code: '91', message: 'transaction not found' };
    if (res.vnp_ResponseCode !== '00') return { outcome: 'unknown', code: res.vnp_ResponseCode, message: res.vnp_Message };
    const status = res.vnp_TransactionStatus ?? '';
    const outcome = status === '02' && res.vnp_TransactionNo === '0' ? 'cancelled' : (TXN_STATUS[status] ?? 'unknown');
    const amount = res.vnp_Amount ? fromVnpAmount(String(res.vnp_Amount)) : undefined;
    if ((res.vnp_Amount && amount === undefined) || (res.vnp_TransactionNo !== undefined && digits(res.vnp_TransactionNo) === undefined)) {
      return { outcome: 'unknown', message: 'VNPay answered querydr with a malformed vnp_Amount or vnp_TransactionNo' };
    }
    return { outcome, amount, providerTxnId: res.vnp_TransactionNo, code: status };
  },

  /**
   * VNPay has no query by refund: querydr of the payment reports its latest refund
   * (vnp_TransactionType 02 full / 03 partial; status 05 processing or 06 sent to the bank, which
   * the refund call itself answers as accepted, 09 rejected). That settles a refund only when it is
   * the payment's only one; when others may exist (any not failed), VNPay's answer cannot be told
   * apart and the refund stays unknown for finance staff. A refund made outside the gateway (in
   * VNPay's merchant portal) would be taken for ours: reconciliation is where that shows.
   */
  async queryRefund(ctx: AdapterContext, q: RefundQuery): Promise<RefundStatus> {
    if (q.otherRefunds > 0) return { outcome: 'unknown', message: 'VNPay reports only the latest refund of a payment, and this payment has others' };
    const res = await querydr(ctx, q.paymentReference, q.paymentCreatedAt);
    if ('unknown' in res) return { outcome: 'unknown', message: res.unknown };
    if (res.vnp_ResponseCode !== '00') return { outcome: 'unknown', code: res.vnp_ResponseCode, message: res.vnp_Message };
    const type = res.vnp_TransactionType ?? '';
    const status = res.vnp_TransactionStatus ?? '';
    if (type === '01') return { outcome: 'unknown', notFound: true, code: status, message: 'VNPay has no refund of this payment' };
    if (type !== '02' && type !== '03') return { outcome: 'unknown', code: type, message: `transaction type ${type}` };
    if (status === '05' || status === '06') return { outcome: 'succeeded', providerRefundId: res.vnp_TransactionNo, code: status };
    if (status === '09') return { outcome: 'failed', code: status, message: 'refund rejected by VNPay' };
    return { outcome: 'unknown', code: status, message: res.vnp_Message };
  },

  async refund(ctx: AdapterContext, req: RefundRequest): Promise<RefundResult> {
    const body: Record<string, string> = {
      ...requestBase(ctx, 'refund', req.refundReference),
      vnp_TransactionType: req.amount === req.paymentAmount ? '02' : '03',
      vnp_TxnRef: req.paymentReference,
      vnp_Amount: toVnpAmount(req.amount),
      vnp_TransactionNo: req.providerTxnId ?? '0',
      vnp_TransactionDate: vnpDate(req.paidAt ?? ctx.clock.now()),
      vnp_CreateBy: 'feegate',
      vnp_OrderInfo: orderInfo(`Hoan tien ${req.refundReference} ${req.reason}`),
    };
    body.vnp_SecureHash = fieldsHash(body, REFUND_REQUEST_FIELDS, cred(ctx, 'hash_secret'));
    const res = await api(ctx, body, REFUND_RESPONSE_FIELDS);
    if ('unknown' in res) return { outcome: 'unknown', message: res.unknown };
    const code = res.vnp_ResponseCode ?? '';
    if (code === '00') return { outcome: 'succeeded', providerRefundId: res.vnp_TransactionNo, code };
    if (code === '94') return { outcome: 'pending', code, message: res.vnp_Message };
    if (['02', '03', '91', '95', '97'].includes(code)) return { outcome: 'failed', code, message: res.vnp_Message };
    return { outcome: 'unknown', code, message: res.vnp_Message };
  },

  /**
   * Assumed layout (VNPay's reconciliation export is not public; adjust here when a real one is at
   * hand): CSV with header `TxnRef,TransactionNo,Amount,Fee,PayDate,Status`, amounts in VND (not
   * x100), PayDate `yyyyMMddHHmmss` GMT+7, Status 00 (paid) / 02 (refund).
   */
  parseSettlement(content: string): SettlementLine[] {
    return parseSettlementCsv(content, (r) => ({
      providerRef: r.TransactionNo,
      ourRef: r.TxnRef,
      amount: r.Amount,
      fee: r.Fee,
      occurredAt: parseVnpDate(r.PayDate ?? ''),
      status: ({ '00': 'succeeded', '02': 'refunded' } as const)[r.Status as '00'],
    }));
  },
};
