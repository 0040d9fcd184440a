/**
 * A PayGov hub simulator following the assumptions in protocol.ts: create validates the partner,
 * the checksum (97), the fields and that the fee items add up (02), duplicates (03) and expiry
 * (07); the hub's page shows the dossier and its fees and lets the payer (or a test) pay through
 * an intermediary, fail or cancel; it POSTs the signed notification (the shared fault knobs), sends the browser back with the signed result, and answers query and refund
 * from its own books.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import formbody from '@fastify/formbody';
import type { Clock } from '../../gateway/clock.js';
import type { HttpClient } from '../http-client.js';
import { CallbackSender, TxnNumbers, maybeHang, payerChoiceRoute, toQuery, type FaultKnobs } from '../simulator-kit.js';
import { CODES, PATHS, parsePgTime, pgSign, pgTime, pgVerify } from './protocol.js';

export interface PaygovPartner {
  partnerCode: string;
  secret: string;
}

export interface PaygovOrder {
  orderId: string;
  transactionId: string;
  amount: number;
  description: string;
  dossierCode: string;
  payerName: string;
  feeItems: { code: string; name: string; amount: number }[];
  returnUrl: string;
  notifyUrl: string;
  expireAt: Date;
  status: 'PENDING' | 'SUCCESS' | 'FAILED' | 'CANCELLED';
  bankCode: string;
  paidAt: string;
  refunded: number;
  knobs: FaultKnobs;
  notifyAnswers: string[];
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export class PaygovSimulator {
  /** Callbacks as the fault knobs say (held ones go out on callbacks.flush()). */
  readonly callbacks = new CallbackSender();
  readonly orders = new Map<string, PaygovOrder>();
  /** Refunds by our requestId (the idempotency key, A9). */
  readonly refunds = new Map<string, { refundTransactionId: string; amount: number; status: 'SUCCESS' | 'PENDING' | 'FAILED' }>();
  /** Unique across restarts (simulator-kit.ts), as the provider's own numbers are. */
  private readonly txnNumbers = new TxnNumbers();
  constructor(readonly opts: { partner: PaygovPartner; http: HttpClient; clock: Clock; publicUrl: string }) {}

  private answer(fields: Record<string, unknown>): Record<string, unknown> {
    return pgSign(this.opts.partner.secret, { ...fields, timestamp: pgTime(this.opts.clock.now()) });
  }

  create(b: Record<string, unknown>): Record<string, unknown> {
    const { partnerCode, secret } = this.opts.partner;
    if (b.partnerCode !== partnerCode || !pgVerify(secret, b)) return this.answer({ code: CODES.checksum, message: 'Invalid checksum' });
    const amount = Number(b.amount);
    const items = Array.isArray(b.feeItems) ? (b.feeItems as { code?: unknown; name?: unknown; amount?: unknown }[]) : [];
    const itemsOk = items.length > 0 && items.every((i) => typeof i.name === 'string' && Number.isSafeInteger(i.amount) && Number(i.amount) > 0);
    const sum = items.reduce((s, i) => s + Number(i.amount), 0);
    if (
      typeof b.orderId !== 'string' ||
      !/^[A-Za-z0-9_-]{1,50}$/.test(b.orderId) ||
      !Number.isSafeInteger(amount) ||
      amount <= 0 ||
      !itemsOk ||
      sum !== amount ||
      typeof b.notifyUrl !== 'string' ||
      typeof b.returnUrl !== 'string' ||
      b.currency !== 'VND'
    ) {
      return this.answer({ code: CODES.invalid, message: 'Invalid data' });
    }
    const expireAt = parsePgTime(String(b.expireAt ?? ''));
    if (!expireAt || expireAt <= this.opts.clock.now()) return this.answer({ code: CODES.expired, message: 'Order expired' });
    if (this.orders.has(b.orderId)) return this.answer({ code: CODES.duplicate, message: 'Duplicate orderId' });
    const transactionId = `PG${pgTime(this.opts.clock.now())}${String(this.txnNumbers.next()).padStart(6, '0')}`;
    this.orders.set(b.orderId, {
      orderId: b.orderId,
      transactionId,
      amount,
      description: String(b.description ?? ''),
      dossierCode: String(b.dossierCode ?? ''),
      payerName: String(b.payerName ?? ''),
      feeItems: items.map((i) => ({ code: String(i.code ?? ''), name: String(i.name), amount: Number(i.amount) })),
      returnUrl: b.returnUrl,
      notifyUrl: b.notifyUrl,
      expireAt,
      status: 'PENDING',
      bankCode: '',
      paidAt: '',
      refunded: 0,
      knobs: {},
      notifyAnswers: [],
    });
    return this.answer({
      code: CODES.ok,
      message: 'Success',
      orderId: b.orderId,
      transactionId,
      paymentUrl: `${this.opts.publicUrl}/sandbox/paygov/pay/${encodeURIComponent(b.orderId)}`,
    });
  }

  /** The signed result the hub sends (notification body, browser return query). */
  result(o: PaygovOrder, amount = o.amount): Record<string, unknown> {
    return pgSign(this.opts.partner.secret, {
      partnerCode: this.opts.partner.partnerCode,
      orderId: o.orderId,
      transactionId: o.transactionId,
      amount,
      status: o.status,
      bankCode: o.bankCode,
      paidAt: o.paidAt,
      timestamp: pgTime(this.opts.clock.now()),
    });
  }

  async complete(orderId: string, result: 'success' | 'cancel' | 'fail'): Promise<PaygovOrder | undefined> {
    const o = this.orders.get(orderId);
    if (!o) return undefined;
    if (o.status === 'PENDING') {
      o.status = result === 'success' ? 'SUCCESS' : result === 'cancel' ? 'CANCELLED' : 'FAILED';
      o.bankCode = result === 'success' ? 'VCB' : '';
      o.paidAt = result === 'success' ? pgTime(this.opts.clock.now()) : '';
    }
    await this.callbacks.send(o.knobs, async () => {
      const body = this.result(o, o.knobs.wrongAmount ? o.amount + 1000 : o.amount);
      try {
        const res = await this.opts.http.request({
          method: 'POST',
          url: o.notifyUrl,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          timeoutMs: 15_000,
        });
        o.notifyAnswers.push(String((JSON.parse(res.body) as { code?: unknown }).code ?? res.status));
      } catch {
        o.notifyAnswers.push('no answer');
      }
    });
    return o;
  }

  async query(b: Record<string, unknown>): Promise<Record<string, unknown>> {
    await maybeHang(this.orders.get(String(b.orderId))?.knobs);
    if (b.partnerCode !== this.opts.partner.partnerCode || !pgVerify(this.opts.partner.secret, b))
      return this.answer({ code: CODES.checksum, message: 'Invalid checksum' });
    const o = this.orders.get(String(b.orderId));
    if (!o) return this.answer({ code: CODES.notFound, message: 'Order not found', orderId: b.orderId });
    return this.answer({ code: CODES.ok, orderId: o.orderId, transactionId: o.transactionId, amount: o.amount, status: o.status, paidAt: o.paidAt });
  }

  refund(b: Record<string, unknown>): Record<string, unknown> {
    if (b.partnerCode !== this.opts.partner.partnerCode || !pgVerify(this.opts.partner.secret, b))
      return this.answer({ code: CODES.checksum, message: 'Invalid checksum' });
    const prior = this.refunds.get(String(b.requestId));
    if (prior) return this.answer({ code: CODES.ok, message: 'Success', refundTransactionId: prior.refundTransactionId });
    const o = this.orders.get(String(b.orderId));
    if (!o || o.transactionId !== b.transactionId || o.status !== 'SUCCESS')
      return this.answer({ code: CODES.notFound, message: 'Transaction not found or not paid' });
    const amount = Number(b.amount);
    if (!Number.isSafeInteger(amount) || amount <= 0 || o.refunded + amount > o.amount)
      return this.answer({ code: CODES.invalid, message: 'Invalid refund amount' });
    o.refunded += amount;
    const r = { refundTransactionId: `RF${o.transactionId}${o.refunded}`, amount, status: 'SUCCESS' as const };
    this.refunds.set(String(b.requestId), r);
    return this.answer({ code: CODES.ok, message: 'Success', refundTransactionId: r.refundTransactionId });
  }

  /** A refund by our requestId (A9). */
  refundQuery(b: Record<string, unknown>): Record<string, unknown> {
    if (b.partnerCode !== this.opts.partner.partnerCode || !pgVerify(this.opts.partner.secret, b))
      return this.answer({ code: CODES.checksum, message: 'Invalid checksum' });
    const r = this.refunds.get(String(b.requestId));
    if (!r) return this.answer({ code: CODES.notFound, message: 'Refund not found', requestId: b.requestId });
    return this.answer({ code: CODES.ok, requestId: b.requestId, ...r });
  }
}

export function paygovSimulatorRoutes(sim: PaygovSimulator): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    await app.register(formbody);
    const hide = { schema: { hide: true } };
    app.post<{ Body: Record<string, unknown> }>(PATHS.create, hide, async (req) => sim.create(req.body ?? {}));
    app.post<{ Body: Record<string, unknown> }>(PATHS.query, hide, async (req) => sim.query(req.body ?? {}));
    app.post<{ Body: Record<string, unknown> }>(PATHS.refund, hide, async (req) => sim.refund(req.body ?? {}));
    app.post<{ Body: Record<string, unknown> }>(PATHS.refundQuery, hide, async (req) => sim.refundQuery(req.body ?? {}));
    app.get<{ Params: { id: string } }>('/pay/:id', hide, async (req, reply) => {
      const o = sim.orders.get(req.params.id);
      if (!o) return reply.code(404).send('order not found');
      const vnd = (n: number) => `${new Intl.NumberFormat('vi-VN').format(n)} ₫`;
      const rows = o.feeItems.map((i) => `<tr><td>${esc(i.name)}</td><td style="text-align:right">${vnd(i.amount)}</td></tr>`).join('');
      const form =
        o.status === 'PENDING'
          ? `<form method="post"><button name="result" value="success">Thanh toán qua ngân hàng</button> <button name="result" value="cancel">Hủy giao dịch</button> <button name="result" value="fail">Giao dịch lỗi</button></form>`
          : `<p>${o.status}</p>`;
      return reply.type('text/html; charset=utf-8').send(`<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>PayGov (simulator)</title></head>
<body style="font:16px system-ui;max-width:36rem;margin:3rem auto"><h1>Cổng thanh toán quốc gia (simulator)</h1>
<p>Hồ sơ ${esc(o.dossierCode)} — ${esc(o.payerName)}</p><table>${rows}<tr><th>Tổng</th><th style="text-align:right">${vnd(o.amount)}</th></tr></table>${form}</body></html>`);
    });
    payerChoiceRoute(app, '/pay/:id', {
      choices: ['success', 'cancel', 'fail'],
      complete: (id, r) => sim.complete(id, r),
      back: (o) => ({ url: o.returnUrl, query: toQuery(sim.result(o)) }),
    });
  };
}
