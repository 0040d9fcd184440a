/**
 * A ZaloPay simulator (API v2): create checks the mac (key1), the app_trans_id date prefix and the
 * amount; the payment page lets a person or a test pay or cancel; on success only, it POSTs the
 * callback `{data, mac, type}` (mac with key2) and redirects the browser with a checksum; query and
 * refund answer from its own books. Knobs: callback lost or duplicated.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import formbody from '@fastify/formbody';
import type { Clock } from '../../gateway/clock.js';
import type { HttpClient } from '../http-client.js';
import { CallbackSender, TxnNumbers, maybeHang, payerChoiceRoute, type FaultKnobs } from '../simulator-kit.js';
import { BAD_MAC_SUB_CODE, NOT_FOUND_SUB_CODE, yymmdd, zpMac } from './protocol.js';

export interface ZalopayApp {
  appId: number;
  key1: string;
  key2: string;
}

export interface ZalopayOrder {
  appTransId: string;
  amount: number;
  callbackUrl: string;
  redirectUrl: string;
  appTime: number;
  embedData: string;
  item: string;
  appUser: string;
  status: 'PENDING' | 'PAID' | 'CANCELLED';
  zpTransId: number;
  serverTime: number;
  refunded: number;
  knobs: FaultKnobs;
  callbackAnswers: string[];
}

export class ZalopaySimulator {
  /** Callbacks as the fault knobs say (held ones go out on callbacks.flush()). */
  readonly callbacks = new CallbackSender();
  readonly orders = new Map<string, ZalopayOrder>();
  /** Refunds by m_refund_id (the idempotency key). */
  readonly refunds = new Map<string, { refundId: number; amount: number }>();
  /** Unique across restarts (simulator-kit.ts), as the provider's own numbers are. */
  private readonly txnNumbers = new TxnNumbers();
  constructor(readonly opts: { app: ZalopayApp; http: HttpClient; clock: Clock; publicUrl: string }) {}

  create(b: Record<string, unknown>): Record<string, unknown> {
    const a = this.opts.app;
    const fail = (sub: number, msg: string) => ({ return_code: 2, return_message: 'Giao dịch thất bại', sub_return_code: sub, sub_return_message: msg });
    if (Number(b.app_id) !== a.appId) return fail(-2, 'invalid app_id');
    const mac = zpMac(a.key1, [
      a.appId,
      String(b.app_trans_id),
      String(b.app_user),
      Number(b.amount),
      Number(b.app_time),
      String(b.embed_data),
      String(b.item),
    ]);
    if (mac !== b.mac) return fail(BAD_MAC_SUB_CODE, 'invalid mac');
    const amount = Number(b.amount);
    if (!Number.isSafeInteger(amount) || amount < 1000) return fail(-3, 'invalid amount');
    const id = String(b.app_trans_id);
    if (!id.startsWith(`${yymmdd(this.opts.clock.now())}_`) || id.length > 40) return fail(-5, 'invalid app_trans_id');
    if (this.orders.has(id)) return fail(-68, 'duplicate app_trans_id');
    let redirectUrl: string;
    try {
      redirectUrl = String((JSON.parse(String(b.embed_data)) as { redirecturl?: string }).redirecturl ?? '');
    } catch {
      return fail(-5, 'invalid embed_data');
    }
    this.orders.set(id, {
      appTransId: id,
      amount,
      callbackUrl: String(b.callback_url ?? ''),
      redirectUrl,
      appTime: Number(b.app_time),
      embedData: String(b.embed_data),
      item: String(b.item),
      appUser: String(b.app_user),
      status: 'PENDING',
      zpTransId: 0,
      serverTime: 0,
      refunded: 0,
      knobs: {},
      callbackAnswers: [],
    });
    return {
      return_code: 1,
      return_message: 'Giao dịch thành công',
      sub_return_code: 1,
      order_url: `${this.opts.publicUrl}/sandbox/zalopay/pay/${encodeURIComponent(id)}`,
      zp_trans_token: id,
      qr_code: `00020101021226520010vn.zalopay${id}`,
    };
  }

  callbackBody(o: ZalopayOrder): string {
    const data = JSON.stringify({
      app_id: this.opts.app.appId,
      app_trans_id: o.appTransId,
      app_time: o.appTime,
      app_user: o.appUser,
      amount: o.amount,
      embed_data: o.embedData,
      item: o.item,
      zp_trans_id: o.zpTransId,
      server_time: o.serverTime,
      channel: 38,
      merchant_user_id: 'sim',
      user_fee_amount: 0,
      discount_amount: 0,
    });
    return JSON.stringify({ data, mac: zpMac(this.opts.app.key2, [data]), type: 1 });
  }

  async complete(id: string, result: 'success' | 'cancel'): Promise<ZalopayOrder | undefined> {
    const o = this.orders.get(id);
    if (!o) return undefined;
    if (o.status === 'PENDING') {
      if (result === 'success') {
        o.status = 'PAID';
        o.zpTransId = this.txnNumbers.next();
        o.serverTime = this.opts.clock.now().getTime();
      } else o.status = 'CANCELLED';
    }
    if (o.status !== 'PAID') return o; // ZaloPay calls back on success only
    await this.callbacks.send(o.knobs, async () => {
      try {
        const body = this.callbackBody(o.knobs.wrongAmount ? { ...o, amount: o.amount + 1000 } : o);
        const res = await this.opts.http.request({
          method: 'POST',
          url: o.callbackUrl,
          headers: { 'content-type': 'application/json' },
          body,
          timeoutMs: 10_000,
        });
        o.callbackAnswers.push(res.body);
      } catch (err) {
        o.callbackAnswers.push(`error: ${(err as Error).message}`);
      }
    });
    return o;
  }

  redirectQuery(o: ZalopayOrder): string {
    const status = o.status === 'PAID' ? '1' : '-49';
    const parts = [this.opts.app.appId, o.appTransId, 38, 'zalopayapp', o.amount, 0, status];
    const q = new URLSearchParams({
      appid: String(this.opts.app.appId),
      apptransid: o.appTransId,
      pmcid: '38',
      bankcode: 'zalopayapp',
      amount: String(o.amount),
      discountamount: '0',
      status,
      checksum: zpMac(this.opts.app.key2, parts),
    });
    return q.toString();
  }

  async query(b: Record<string, unknown>): Promise<Record<string, unknown>> {
    await maybeHang(this.orders.get(String(b.app_trans_id))?.knobs);
    const a = this.opts.app;
    if (zpMac(a.key1, [a.appId, String(b.app_trans_id), a.key1]) !== b.mac)
      return { return_code: 2, return_message: 'invalid mac', sub_return_code: BAD_MAC_SUB_CODE };
    const o = this.orders.get(String(b.app_trans_id));
    if (!o) return { return_code: 2, return_message: 'Giao dịch không tồn tại', sub_return_code: NOT_FOUND_SUB_CODE };
    if (o.status === 'PAID')
      return {
        return_code: 1,
        return_message: 'Giao dịch thành công',
        amount: o.amount,
        zp_trans_id: o.zpTransId,
        server_time: o.serverTime,
        is_processing: false,
      };
    if (o.status === 'CANCELLED') return { return_code: 2, return_message: 'Giao dịch thất bại', sub_return_code: -49, is_processing: false };
    return { return_code: 3, return_message: 'Giao dịch chưa được thực hiện', is_processing: true };
  }

  refund(b: Record<string, unknown>): Record<string, unknown> {
    const a = this.opts.app;
    if (zpMac(a.key1, [a.appId, String(b.zp_trans_id), Number(b.amount), String(b.description), Number(b.timestamp)]) !== b.mac)
      return { return_code: 2, return_message: 'invalid mac', sub_return_code: BAD_MAC_SUB_CODE };
    const o = [...this.orders.values()].find((x) => x.status === 'PAID' && String(x.zpTransId) === String(b.zp_trans_id));
    const amount = Number(b.amount);
    if (!o) return { return_code: 2, return_message: 'transaction not found', sub_return_code: NOT_FOUND_SUB_CODE };
    const prior = this.refunds.get(String(b.m_refund_id));
    if (prior) return { return_code: 1, return_message: 'Hoàn tiền thành công', refund_id: prior.refundId }; // m_refund_id is the idempotency key
    if (!Number.isSafeInteger(amount) || amount < 1 || o.refunded + amount > o.amount)
      return { return_code: 2, return_message: 'invalid amount', sub_return_code: -3 };
    o.refunded += amount;
    const refundId = this.txnNumbers.next();
    this.refunds.set(String(b.m_refund_id), { refundId, amount });
    return { return_code: 1, return_message: 'Hoàn tiền thành công', refund_id: refundId };
  }

  /** query_refund: a refund by its m_refund_id. */
  queryRefund(b: Record<string, unknown>): Record<string, unknown> {
    const a = this.opts.app;
    if (zpMac(a.key1, [a.appId, String(b.m_refund_id), Number(b.timestamp)]) !== b.mac)
      return { return_code: 2, return_message: 'invalid mac', sub_return_code: BAD_MAC_SUB_CODE };
    const r = this.refunds.get(String(b.m_refund_id));
    if (!r) return { return_code: 2, return_message: 'Giao dịch hoàn tiền không tồn tại', sub_return_code: NOT_FOUND_SUB_CODE };
    return { return_code: 1, return_message: 'Hoàn tiền thành công', refund_id: r.refundId, amount: r.amount };
  }
}

export function zalopaySimulatorRoutes(sim: ZalopaySimulator): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    await app.register(formbody);
    const hide = { schema: { hide: true } };
    app.post<{ Body: Record<string, unknown> }>('/v2/create', hide, async (req) => sim.create(req.body ?? {}));
    app.post<{ Body: Record<string, unknown> }>('/v2/query', hide, async (req) => sim.query(req.body ?? {}));
    app.post<{ Body: Record<string, unknown> }>('/v2/refund', hide, async (req) => sim.refund(req.body ?? {}));
    app.post<{ Body: Record<string, unknown> }>('/v2/query_refund', hide, async (req) => sim.queryRefund(req.body ?? {}));
    app.get<{ Params: { id: string } }>('/pay/:id', hide, async (req, reply) => {
      const o = sim.orders.get(req.params.id);
      if (!o) return reply.code(404).send('order not found');
      return reply.type('text/html; charset=utf-8')
        .send(`<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>ZaloPay (simulator)</title></head><body style="font:16px system-ui;max-width:32rem;margin:3rem auto">
<h1>ZaloPay (simulator)</h1><p style="font-size:1.5rem">${new Intl.NumberFormat('vi-VN').format(o.amount)} ₫</p>
${o.status === 'PENDING' ? `<form method="post"><button name="result" value="success">Thanh toán</button> <button name="result" value="cancel">Hủy</button></form>` : `<p>${o.status}</p>`}</body></html>`);
    });
    payerChoiceRoute(app, '/pay/:id', {
      choices: ['success', 'cancel'],
      complete: (id, r) => sim.complete(id, r),
      back: (o) => ({ url: o.redirectUrl, query: sim.redirectQuery(o) }),
    });
  };
}
