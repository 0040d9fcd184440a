/**
 * A VNPay simulator speaking API 2.1.0: the payment page (vpcpay.html) validates the signed
 * redirect as VNPay does (bad terminal 02, bad format 03, expired 11, bad checksum 97), lets a
 * person or a test pay, cancel (24) or fail (51), sends the signed IPN by GET to the terminal's
 * configured IPN URL and redirects the browser to vnp_ReturnUrl; querydr and refund answer from
 * its own books (a repeated refund vnp_RequestId is 94, duplicate request, and refunds nothing).
 * Knobs: IPN lost or duplicated, wrong amount in the IPN.
 */
import crypto from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import formbody from '@fastify/formbody';
import type { Clock } from '../../gateway/clock.js';
import type { HttpClient } from '../http-client.js';
import { CallbackSender, TxnNumbers, maybeHang, payerChoiceRoute, type FaultKnobs } from '../simulator-kit.js';
import {
  QUERY_REQUEST_FIELDS,
  QUERY_RESPONSE_FIELDS,
  REFUND_REQUEST_FIELDS,
  REFUND_RESPONSE_FIELDS,
  fieldsHash,
  fromVnpAmount,
  parseVnpDate,
  secureHash,
  signData,
  toVnpAmount,
  verifySecureHash,
  vnpDate,
} from './protocol.js';

export interface VnpayTerminal {
  tmnCode: string;
  secret: string;
  /** Configured per terminal at VNPay (not a request field). */
  ipnUrl: string;
}

export interface VnpayOrder {
  txnRef: string;
  amount: number;
  orderInfo: string;
  returnUrl: string;
  createDate: string;
  expireAt: Date | undefined;
  status: 'PENDING' | 'SUCCESS' | 'CANCELLED' | 'FAILED';
  responseCode: string;
  transactionNo: string;
  payDate?: string;
  refunded: number;
  /** The type of the latest refund (02 full, 03 partial): querydr reports the latest one only. */
  lastRefundType?: '02' | '03';
  /** The refunds made, one per vnp_RequestId (VNPay's books). */
  refunds?: { requestId: string; amount: number; type: '02' | '03' }[];
  knobs: FaultKnobs;
  ipnAnswers: string[];
}

export class VnpaySimulator {
  /** Callbacks as the fault knobs say (held ones go out on callbacks.flush()). */
  readonly callbacks = new CallbackSender();
  readonly orders = new Map<string, VnpayOrder>();
  /** Every refund vnp_RequestId seen: a repeat is answered 94 (duplicate request), never refunded again. */
  private readonly refundRequestIds = new Set<string>();
  /** Unique across restarts (simulator-kit.ts), as the provider's own numbers are. */
  private readonly txnNumbers = new TxnNumbers();
  constructor(readonly opts: { terminal: VnpayTerminal; http: HttpClient; clock: Clock }) {}

  /** The payment page's checks, in VNPay's order; returns the order or VNPay's error code. */
  open(q: Record<string, string>): { ok: true; order: VnpayOrder } | { ok: false; code: string } {
    const t = this.opts.terminal;
    if (q.vnp_TmnCode !== t.tmnCode) return { ok: false, code: '02' };
    if (!verifySecureHash(q, t.secret)) return { ok: false, code: '97' };
    const amount = fromVnpAmount(q.vnp_Amount ?? '');
    if (
      q.vnp_Version !== '2.1.0' ||
      q.vnp_Command !== 'pay' ||
      !q.vnp_TxnRef ||
      !q.vnp_ReturnUrl ||
      amount === undefined ||
      amount < 5000 ||
      !parseVnpDate(q.vnp_CreateDate ?? '')
    ) {
      return { ok: false, code: '03' };
    }
    const expireAt = q.vnp_ExpireDate ? parseVnpDate(q.vnp_ExpireDate) : undefined;
    if (expireAt && expireAt < this.opts.clock.now()) return { ok: false, code: '11' };
    let order = this.orders.get(q.vnp_TxnRef);
    if (!order) {
      order = {
        txnRef: q.vnp_TxnRef,
        amount,
        orderInfo: q.vnp_OrderInfo ?? '',
        returnUrl: q.vnp_ReturnUrl,
        createDate: q.vnp_CreateDate!,
        expireAt,
        status: 'PENDING',
        responseCode: '',
        transactionNo: '0',
        refunded: 0,
        refunds: [],
        knobs: {},
        ipnAnswers: [],
      };
      this.orders.set(order.txnRef, order);
    }
    return { ok: true, order };
  }

  private resultParams(o: VnpayOrder): Record<string, string> {
    const p: Record<string, string> = {
      vnp_Amount: toVnpAmount(o.knobs.wrongAmount ? o.amount + 1000 : o.amount),
      vnp_BankCode: 'NCB',
      vnp_CardType: 'ATM',
      vnp_OrderInfo: o.orderInfo,
      vnp_PayDate: o.payDate ?? vnpDate(this.opts.clock.now()),
      vnp_ResponseCode: o.responseCode,
      vnp_TmnCode: this.opts.terminal.tmnCode,
      vnp_TransactionNo: o.transactionNo,
      vnp_TransactionStatus: o.status === 'SUCCESS' ? '00' : '02',
      vnp_TxnRef: o.txnRef,
    };
    if (o.status === 'SUCCESS') p.vnp_BankTranNo = `VNP${o.transactionNo}`;
    return { ...p, vnp_SecureHash: secureHash(p, this.opts.terminal.secret) };
  }

  resultQuery(o: VnpayOrder): string {
    const p = this.resultParams(o);
    return `${signData(p)}&vnp_SecureHash=${p.vnp_SecureHash}`;
  }

  /** The payer's choice; sends the IPN (GET) and returns the browser redirect. */
  async complete(txnRef: string, result: 'success' | 'cancel' | 'fail'): Promise<VnpayOrder | undefined> {
    const o = this.orders.get(txnRef);
    if (!o) return undefined;
    if (o.status === 'PENDING') {
      if (o.expireAt && o.expireAt < this.opts.clock.now()) {
        o.status = 'FAILED';
        o.responseCode = '11';
      } else if (result === 'success') {
        o.status = 'SUCCESS';
        o.responseCode = '00';
        o.transactionNo = String(this.txnNumbers.next());
        o.payDate = vnpDate(this.opts.clock.now());
      } else if (result === 'cancel') {
        o.status = 'CANCELLED';
        o.responseCode = '24';
      } else {
        o.status = 'FAILED';
        o.responseCode = '51';
      }
    }
    await this.callbacks.send(o.knobs, () => this.sendIpn(o));
    return o;
  }

  async sendIpn(o: VnpayOrder): Promise<void> {
    try {
      const res = await this.opts.http.request({ method: 'GET', url: `${this.opts.terminal.ipnUrl}?${this.resultQuery(o)}`, timeoutMs: 10_000 });
      o.ipnAnswers.push(res.body);
    } catch (err) {
      o.ipnAnswers.push(`error: ${(err as Error).message}`);
    }
  }

  /** querydr and refund (JSON POST to merchant_webapi/api/transaction). */
  async transaction(b: Record<string, string>): Promise<Record<string, string>> {
    if (b.vnp_Command === 'querydr') await maybeHang(this.orders.get(b.vnp_TxnRef ?? '')?.knobs);
    return this.answerTransaction(b);
  }

  private answerTransaction(b: Record<string, string>): Record<string, string> {
    const t = this.opts.terminal;
    const sign = (out: Record<string, string>, fields: readonly string[]) => ({ ...out, vnp_SecureHash: fieldsHash(out, fields, t.secret) });
    const base = { vnp_ResponseId: crypto.randomBytes(8).toString('hex'), vnp_Command: b.vnp_Command ?? '', vnp_TmnCode: t.tmnCode };
    if (b.vnp_TmnCode !== t.tmnCode) return { ...base, vnp_ResponseCode: '02', vnp_Message: 'Invalid TmnCode' };
    const fields = b.vnp_Command === 'refund' ? REFUND_REQUEST_FIELDS : QUERY_REQUEST_FIELDS;
    if (fieldsHash(b, fields, t.secret) !== String(b.vnp_SecureHash ?? '').toLowerCase())
      return { ...base, vnp_ResponseCode: '97', vnp_Message: 'Invalid Checksum' };
    const o = this.orders.get(b.vnp_TxnRef ?? '');
    if (!o) return { ...base, vnp_ResponseCode: '91', vnp_Message: 'Transaction not found' };
    // A transaction is named by vnp_TxnRef AND vnp_TransactionDate, its own vnp_CreateDate
    // (payment-protocols.md §1.6): another date names no transaction.
    if (b.vnp_Command === 'querydr' && b.vnp_TransactionDate !== o.createDate) return { ...base, vnp_ResponseCode: '91', vnp_Message: 'Transaction not found' };
    const common = {
      ...base,
      vnp_TxnRef: o.txnRef,
      vnp_BankCode: 'NCB',
      vnp_PayDate: o.payDate ?? '',
      vnp_TransactionNo: o.transactionNo,
      vnp_OrderInfo: o.orderInfo,
    };
    if (b.vnp_Command === 'querydr') {
      return sign(
        {
          ...common,
          vnp_ResponseCode: '00',
          vnp_Message: 'QueryDR Success',
          vnp_Amount: toVnpAmount(o.amount),
          vnp_TransactionType: o.lastRefundType ?? '01',
          vnp_TransactionStatus: o.status === 'SUCCESS' ? (o.refunded > 0 ? '05' : '00') : o.status === 'PENDING' ? '01' : '02',
          vnp_PromotionCode: '',
          vnp_PromotionAmount: '',
        },
        QUERY_RESPONSE_FIELDS,
      );
    }
    if (b.vnp_Command === 'refund') {
      const amount = fromVnpAmount(b.vnp_Amount ?? '');
      const requestId = String(b.vnp_RequestId ?? '');
      if (this.refundRequestIds.has(requestId)) return { ...base, vnp_ResponseCode: '94', vnp_Message: 'Duplicate request' };
      this.refundRequestIds.add(requestId);
      if (o.status !== 'SUCCESS')
        return sign(
          {
            ...common,
            vnp_ResponseCode: '95',
            vnp_Message: 'Transaction not successful',
            vnp_Amount: b.vnp_Amount ?? '',
            vnp_TransactionType: b.vnp_TransactionType ?? '',
            vnp_TransactionStatus: '02',
          },
          REFUND_RESPONSE_FIELDS,
        );
      if (amount === undefined || amount < 1 || o.refunded + amount > o.amount || (b.vnp_TransactionType === '02' && amount !== o.amount)) {
        return { ...base, vnp_ResponseCode: '03', vnp_Message: 'Invalid amount' };
      }
      o.refunded += amount;
      o.lastRefundType = b.vnp_TransactionType === '02' ? '02' : '03';
      (o.refunds ??= []).push({ requestId, amount, type: o.lastRefundType });
      return sign(
        {
          ...common,
          vnp_ResponseCode: '00',
          vnp_Message: 'Refund success',
          vnp_Amount: b.vnp_Amount!,
          vnp_TransactionType: b.vnp_TransactionType!,
          vnp_TransactionStatus: '05',
        },
        REFUND_RESPONSE_FIELDS,
      );
    }
    return { ...base, vnp_ResponseCode: '03', vnp_Message: 'Invalid command' };
  }
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Routes, to register under a prefix (the gateway mounts them at /sandbox/vnpay in sandbox mode). */
export function vnpaySimulatorRoutes(sim: VnpaySimulator): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    await app.register(formbody);
    const hide = { schema: { hide: true } };
    app.get<{ Querystring: Record<string, string> }>('/paymentv2/vpcpay.html', hide, async (req, reply) => {
      const r = sim.open(req.query);
      reply.type('text/html; charset=utf-8');
      if (!r.ok)
        return reply.code(400).send(`<!doctype html><meta charset="utf-8"><h1>VNPAY (simulator)</h1><p>Giao dịch không hợp lệ. Mã lỗi ${esc(r.code)}</p>`);
      const o = r.order;
      return reply.send(`<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>VNPAY (simulator)</title></head><body style="font:16px system-ui;max-width:32rem;margin:3rem auto">
<h1>VNPAY (simulator)</h1><p>${esc(o.orderInfo)}</p><p style="font-size:1.5rem">${new Intl.NumberFormat('vi-VN').format(o.amount)} ₫</p>
${o.status === 'PENDING' ? `<form method="post" action="pay/${encodeURIComponent(o.txnRef)}"><button name="result" value="success">Thanh toán</button> <button name="result" value="cancel">Hủy</button> <button name="result" value="fail">Không đủ số dư</button></form>` : `<p>${o.status}</p>`}
</body></html>`);
    });
    payerChoiceRoute(app, '/paymentv2/pay/:id', {
      choices: ['success', 'cancel', 'fail'],
      complete: (id, r) => sim.complete(id, r),
      back: (o) => ({ url: o.returnUrl, query: sim.resultQuery(o) }),
    });
    app.post<{ Body: Record<string, string> }>('/merchant_webapi/api/transaction', hide, async (req) => sim.transaction(req.body ?? {}));
    app.post<{ Params: { ref: string }; Body: { result?: 'success' | 'cancel' | 'fail' } }>('/control/orders/:ref/complete', hide, async (req, reply) => {
      const o = await sim.complete(req.params.ref, req.body?.result ?? 'success');
      return o ? { status: o.status, ipn_answers: o.ipnAnswers } : reply.code(404).send({ message: 'order not found' });
    });
  };
}
