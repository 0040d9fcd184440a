/**
 * A MoMo simulator (API v2): create validates the signature and fields as MoMo does (amount 1,000
 * to 50,000,000; orderId format; duplicate orderId), a payment page lets a person or a test pay
 * (0), cancel (1006) or fail (1001); the signed IPN is POSTed as JSON and MoMo expects HTTP 204;
 * the browser goes back to redirectUrl; query and refund answer from its own books.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import formbody from '@fastify/formbody';
import type { Clock } from '../../gateway/clock.js';
import type { HttpClient } from '../http-client.js';
import { CallbackSender, TxnNumbers, maybeHang, payerChoiceRoute, toQuery, type FaultKnobs } from '../simulator-kit.js';
import { CREATE_KEYS, IPN_KEYS, ORDER_ID, QUERY_KEYS, REFUND_KEYS, momoSign, momoVerify } from './protocol.js';

export interface MomoPartner {
  partnerCode: string;
  accessKey: string;
  secretKey: string;
}

export interface MomoOrder {
  orderId: string;
  requestId: string;
  amount: number;
  orderInfo: string;
  redirectUrl: string;
  ipnUrl: string;
  extraData: string;
  resultCode: number;
  message: string;
  transId: number;
  responseTime: number;
  refunded: number;
  /** Refunds of this payment, as the query's refundTrans lists them. */
  refunds: { orderId: string; amount: number; resultCode: number; transId: number; createdTime: number }[];
  knobs: FaultKnobs;
  ipnStatuses: number[];
}

export class MomoSimulator {
  /** Callbacks as the fault knobs say (held ones go out on callbacks.flush()). */
  readonly callbacks = new CallbackSender();
  readonly orders = new Map<string, MomoOrder>();
  /** Refund requestIds seen (MoMo answers a repeat 40, Duplicated requestId). */
  private readonly requestIds = new Set<string>();
  /** Unique across restarts (simulator-kit.ts), as the provider's own numbers are. */
  private readonly txnNumbers = new TxnNumbers();
  constructor(readonly opts: { partner: MomoPartner; http: HttpClient; clock: Clock; publicUrl: string }) {}

  private now(): number {
    return this.opts.clock.now().getTime();
  }

  create(b: Record<string, unknown>): Record<string, unknown> {
    const p = this.opts.partner;
    const base = { partnerCode: p.partnerCode, orderId: b.orderId, requestId: b.requestId, amount: b.amount, responseTime: this.now() };
    if (b.partnerCode !== p.partnerCode) return { ...base, resultCode: 13, message: 'Merchant authentication failed' };
    if (!momoVerify(p.secretKey, { ...b, accessKey: p.accessKey }, CREATE_KEYS)) return { ...base, resultCode: 11, message: 'Access denied: signature' };
    const amount = Number(b.amount);
    if (!Number.isSafeInteger(amount) || amount < 1000 || amount > 50_000_000) return { ...base, resultCode: 22, message: 'Invalid amount' };
    if (typeof b.orderId !== 'string' || !ORDER_ID.test(b.orderId) || !b.ipnUrl || !b.redirectUrl)
      return { ...base, resultCode: 20, message: 'Bad format request' };
    if (this.orders.has(b.orderId)) return { ...base, resultCode: 41, message: 'Duplicated orderId' };
    this.orders.set(b.orderId, {
      orderId: b.orderId,
      requestId: String(b.requestId),
      amount,
      orderInfo: String(b.orderInfo ?? ''),
      redirectUrl: String(b.redirectUrl),
      ipnUrl: String(b.ipnUrl),
      extraData: String(b.extraData ?? ''),
      resultCode: 1000,
      message: 'Transaction is initiated',
      transId: 0,
      responseTime: this.now(),
      refunded: 0,
      refunds: [],
      knobs: {},
      ipnStatuses: [],
    });
    const payUrl = `${this.opts.publicUrl}/sandbox/momo/pay/${encodeURIComponent(b.orderId)}`;
    return {
      ...base,
      resultCode: 0,
      message: 'Thành công.',
      payUrl,
      deeplink: `momo://app?action=payWithApp&orderId=${b.orderId}`,
      qrCodeUrl: `2|99|0000000000|||0|0|${amount}|${b.orderId}`,
    };
  }

  result(o: MomoOrder): Record<string, unknown> {
    const p = this.opts.partner;
    const f = {
      partnerCode: p.partnerCode,
      orderId: o.orderId,
      requestId: o.requestId,
      amount: o.amount,
      orderInfo: o.orderInfo,
      orderType: 'momo_wallet',
      transId: o.transId,
      resultCode: o.resultCode,
      message: o.message,
      payType: 'qr',
      responseTime: o.responseTime,
      extraData: o.extraData,
    };
    return { ...f, signature: momoSign(p.secretKey, { ...f, accessKey: p.accessKey }, IPN_KEYS) };
  }

  async complete(orderId: string, result: 'success' | 'cancel' | 'fail'): Promise<MomoOrder | undefined> {
    const o = this.orders.get(orderId);
    if (!o) return undefined;
    if (o.resultCode === 1000) {
      o.responseTime = this.now();
      if (result === 'success') {
        o.resultCode = 0;
        o.message = 'Successful.';
        o.transId = this.txnNumbers.next();
      } else if (result === 'cancel') {
        o.resultCode = 1006;
        o.message = 'Transaction denied by user.';
      } else {
        o.resultCode = 1001;
        o.message = 'Insufficient funds.';
      }
    }
    await this.callbacks.send(o.knobs, async () => {
      const body = this.result(o.knobs.wrongAmount ? { ...o, amount: o.amount + 1000 } : o);
      try {
        const res = await this.opts.http.request({
          method: 'POST',
          url: o.ipnUrl,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          timeoutMs: 15_000,
        });
        o.ipnStatuses.push(res.status);
      } catch {
        o.ipnStatuses.push(0);
      }
    });
    return o;
  }

  async query(b: Record<string, unknown>): Promise<Record<string, unknown>> {
    await maybeHang(this.orders.get(String(b.orderId))?.knobs);
    const p = this.opts.partner;
    if (!momoVerify(p.secretKey, { ...b, accessKey: p.accessKey }, QUERY_KEYS)) return { resultCode: 11, message: 'Access denied: signature' };
    const o = this.orders.get(String(b.orderId));
    if (!o)
      return { partnerCode: p.partnerCode, orderId: b.orderId, requestId: b.requestId, resultCode: 42, message: 'Order not found', responseTime: this.now() };
    return { ...this.result(o), requestId: b.requestId, refundTrans: o.refunds.map((r) => ({ ...r, description: '' })), signature: undefined };
  }

  /**
   * A refund. MoMo is not idempotent on a repeated requestId (only final answers of some APIs are,
   * and a refund's is not replayed): a repeat is 40 "Duplicated requestId", a refund orderId used
   * before 41 "Duplicated orderId"; neither refunds anything.
   */
  refund(b: Record<string, unknown>): Record<string, unknown> {
    const p = this.opts.partner;
    if (!momoVerify(p.secretKey, { ...b, accessKey: p.accessKey }, REFUND_KEYS)) return { resultCode: 11, message: 'Access denied: signature' };
    const echo = { partnerCode: p.partnerCode, orderId: b.orderId, requestId: b.requestId, responseTime: this.now() };
    if (this.requestIds.has(String(b.requestId))) return { ...echo, resultCode: 40, message: 'Duplicated requestId.' };
    this.requestIds.add(String(b.requestId));
    if ([...this.orders.values()].some((x) => x.orderId === b.orderId || x.refunds.some((r) => r.orderId === b.orderId))) {
      return { ...echo, resultCode: 41, message: 'Duplicated orderId.' };
    }
    const o = [...this.orders.values()].find((x) => String(x.transId) === String(b.transId) && x.transId !== 0);
    const amount = Number(b.amount);
    if (!o || o.resultCode !== 0) return { resultCode: 1080, message: 'Refund failed: original transaction not found or not successful' };
    if (!Number.isSafeInteger(amount) || amount < 1000 || o.refunded + amount > o.amount) return { resultCode: 1081, message: 'Refund amount invalid' };
    o.refunded += amount;
    const r = { orderId: String(b.orderId), amount, resultCode: 0, transId: this.txnNumbers.next(), createdTime: this.now() };
    o.refunds.push(r);
    return {
      partnerCode: p.partnerCode,
      orderId: b.orderId,
      requestId: b.requestId,
      amount,
      transId: r.transId,
      resultCode: 0,
      message: 'Successful.',
      responseTime: this.now(),
    };
  }
}

export function momoSimulatorRoutes(sim: MomoSimulator): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    await app.register(formbody);
    const hide = { schema: { hide: true } };
    app.post<{ Body: Record<string, unknown> }>('/v2/gateway/api/create', hide, async (req) => sim.create(req.body ?? {}));
    app.post<{ Body: Record<string, unknown> }>('/v2/gateway/api/query', hide, async (req) => sim.query(req.body ?? {}));
    app.post<{ Body: Record<string, unknown> }>('/v2/gateway/api/refund', hide, async (req) => sim.refund(req.body ?? {}));
    app.get<{ Params: { id: string } }>('/pay/:id', hide, async (req, reply) => {
      const o = sim.orders.get(req.params.id);
      if (!o) return reply.code(404).send('order not found');
      return reply.type('text/html; charset=utf-8')
        .send(`<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>MoMo (simulator)</title></head><body style="font:16px system-ui;max-width:32rem;margin:3rem auto">
<h1>MoMo (simulator)</h1><p style="font-size:1.5rem">${new Intl.NumberFormat('vi-VN').format(o.amount)} ₫</p>
${o.resultCode === 1000 ? `<form method="post"><button name="result" value="success">Xác nhận thanh toán</button> <button name="result" value="cancel">Hủy</button> <button name="result" value="fail">Không đủ số dư</button></form>` : `<p>resultCode ${o.resultCode}</p>`}</body></html>`);
    });
    payerChoiceRoute(app, '/pay/:id', {
      choices: ['success', 'cancel', 'fail'],
      complete: (id, r) => sim.complete(id, r),
      back: (o) => ({ url: o.redirectUrl, query: toQuery(sim.result(o)) }),
    });
  };
}
