/**
 * The sandbox provider, simulated: what the real provider would run. It keeps its own orders in
 * memory (it is the provider's truth, separate from ours), serves a small payment page, sends
 * signed callbacks, redirects the browser back, and answers query and refund calls.
 *
 * Fault knobs (per order, or queued for the next orders created): create fails / times out /
 * answers unknown; the callback is lost, duplicated, delayed until flushed, or followed by a stale
 * out-of-order one; the callback reports a wrong amount; query times out, is slow or answers
 * garbage; refund fails, times out or stays pending. Create and refund are not idempotent on our
 * references (a repeat is answered duplicate, 06), as MoMo's are not.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import formbody from '@fastify/formbody';
import type { Clock } from '../../gateway/clock.js';
import type { HttpClient } from '../http-client.js';
import { CODES, SANDBOX_MERCHANT, statusToCode, verify, withSignature, type Fields, type SandboxStatus } from './protocol.js';

export interface Scenario {
  create?: 'normal' | 'fail' | 'timeout' | 'unknown';
  callback?: 'normal' | 'lost' | 'duplicate' | 'delayed' | 'out_of_order';
  wrongAmount?: boolean;
  /** `stale`: the status API lags and still says PENDING after the order was paid. */
  query?: 'normal' | 'timeout' | 'slow' | 'unknown' | 'stale';
  refund?: 'normal' | 'fail' | 'timeout' | 'pending';
  /** How long "timeout" and "slow" answers take (ms). */
  delayMs?: number;
}

export interface SimOrder {
  merchant: string;
  reference: string;
  amount: number;
  currency: string;
  description: string;
  returnUrl: string;
  notifyUrl: string;
  expiresAt: number;
  status: SandboxStatus;
  txnId: string;
  paidAt?: number;
  refunds: { refundReference: string; refundId: string; amount: number; status: 'SUCCESS' | 'PENDING' }[];
  scenario: Scenario;
  /** Callbacks held back by the `delayed` knob, sent on flush. */
  held: Fields[];
  /** Every callback sent, with the gateway's answer, for tests and the control API. */
  deliveries: { payload: Fields; status: number; answer: string }[];
}

export interface SimulatorOptions {
  secret: string;
  http: HttpClient;
  clock: Clock;
  /** Base URL the simulator's own pages are reached at (the gateway's public URL when mounted). */
  publicUrl: string;
}

const nowSec = (clock: Clock) => Math.floor(clock.now().getTime() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SandboxSimulator {
  readonly orders = new Map<string, SimOrder>();
  private nextScenarios: Scenario[] = [];
  private seq = 0;
  constructor(readonly opts: SimulatorOptions) {}

  queueScenario(s: Scenario): void {
    this.nextScenarios.push(s);
  }

  private signed<T extends Fields>(fields: T): T & { sig: string } {
    return withSignature(fields, this.opts.secret);
  }

  createOrder(f: Fields): { status: number; body: Fields } {
    const reference = String(f.reference ?? '');
    const amount = Number(f.amount);
    if (!reference || !f.notify_url || !f.return_url) return { status: 400, body: { code: CODES.badRequest, message: 'missing field' } };
    if (!Number.isSafeInteger(amount) || amount < 1) return { status: 400, body: { code: CODES.amountInvalid, message: 'amount must be a positive integer' } };
    // Not idempotent, like MoMo's create (41, duplicated orderId): a reference is created once; a
    // repeated create is refused as a duplicate and must be asked about (query), not re-sent.
    if (this.orders.has(reference)) return { status: 200, body: this.signed({ code: CODES.duplicate, message: 'an order with this reference exists' }) };
    const scenario = this.nextScenarios.shift() ?? {};
    if (scenario.create === 'fail') return { status: 200, body: this.signed({ code: CODES.failed, message: 'merchant is not allowed to create orders' }) };
    const order: SimOrder = {
      merchant: String(f.merchant ?? SANDBOX_MERCHANT),
      reference,
      amount,
      currency: String(f.currency ?? 'VND'),
      description: String(f.description ?? ''),
      returnUrl: String(f.return_url),
      notifyUrl: String(f.notify_url),
      expiresAt: Number(f.expires_at ?? 0),
      status: 'PENDING',
      txnId: `SBX${Date.now().toString(36).toUpperCase()}${(++this.seq).toString(36).toUpperCase()}`,
      refunds: [],
      scenario,
      held: [],
      deliveries: [],
    };
    this.orders.set(reference, order);
    if (scenario.create === 'unknown') return { status: 200, body: { code: CODES.systemError, message: 'system busy' } };
    return { status: 200, body: this.signed({ code: CODES.success, pay_url: this.payUrl(reference), txn_id: order.txnId }) };
  }

  /**
   * The payer's browser arriving with a signed redirect checkout (the `sandbox` adapter's flow):
   * the order is created at the provider on this first visit, as with VNPay.
   */
  open(query: Record<string, unknown>): { ok: true; order: SimOrder } | { ok: false; code: string; message: string } {
    const f = fieldsOf(query);
    if (!f) return { ok: false, code: CODES.badRequest, message: 'bad request' };
    if (!verify(f, this.opts.secret)) return { ok: false, code: CODES.badSignature, message: 'invalid signature' };
    if (Number(f.expires_at) && Number(f.expires_at) < nowSec(this.opts.clock)) return { ok: false, code: CODES.failed, message: 'the checkout has expired' };
    // The browser may come back to the same signed checkout: the order is created on its first visit only.
    const known = this.orders.get(String(f.reference));
    if (known)
      return known.amount === Number(f.amount)
        ? { ok: true, order: known }
        : { ok: false, code: CODES.duplicate, message: 'reference used with another amount' };
    const res = this.createOrder(f);
    const order = this.orders.get(String(f.reference));
    if (res.body.code !== CODES.success || !order) return { ok: false, code: String(res.body.code), message: String(res.body.message ?? 'refused') };
    return { ok: true, order };
  }

  /** open() from a checkout URL, for tests acting as the browser. */
  openUrl(url: string): SimOrder {
    const r = this.open(Object.fromEntries(new URL(url).searchParams));
    if (!r.ok) throw new Error(`sandbox refused the checkout: ${r.code} ${r.message}`);
    return r.order;
  }

  payUrl(reference: string): string {
    return `${this.opts.publicUrl}/sandbox/pay/${encodeURIComponent(reference)}`;
  }

  private callbackPayload(order: SimOrder, status: SandboxStatus): Fields {
    return this.signed({
      merchant: order.merchant,
      reference: order.reference,
      txn_id: order.txnId,
      status,
      code: statusToCode(status),
      amount: order.scenario.wrongAmount ? order.amount + 1000 : order.amount,
      currency: order.currency,
      paid_at: order.paidAt ?? 0,
      ts: nowSec(this.opts.clock),
    });
  }

  async deliver(order: SimOrder, payload: Fields): Promise<void> {
    try {
      const res = await this.opts.http.request({
        method: 'POST',
        url: order.notifyUrl,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
        timeoutMs: 10_000,
      });
      order.deliveries.push({ payload, status: res.status, answer: res.body });
    } catch (err) {
      order.deliveries.push({ payload, status: 0, answer: (err as Error).message });
    }
  }

  /** Like the real gateways, an order not paid by its deadline can no longer be paid. */
  private expireIfDue(order: SimOrder): void {
    if (order.status === 'PENDING' && order.expiresAt > 0 && nowSec(this.opts.clock) > order.expiresAt) order.status = 'CANCELLED';
  }

  /** The payer's choice on the payment page (or a test acting as the payer). */
  async complete(reference: string, result: 'success' | 'fail' | 'cancel'): Promise<SimOrder | undefined> {
    const order = this.orders.get(reference);
    if (!order) return undefined;
    this.expireIfDue(order);
    if (order.status === 'PENDING') {
      order.status = result === 'success' ? 'SUCCESS' : result === 'fail' ? 'FAILED' : 'CANCELLED';
      if (order.status === 'SUCCESS') order.paidAt = nowSec(this.opts.clock);
    }
    const final = this.callbackPayload(order, order.status);
    switch (order.scenario.callback ?? 'normal') {
      case 'lost':
        break;
      case 'delayed':
        order.held.push(final);
        break;
      case 'duplicate':
        await this.deliver(order, final);
        await this.deliver(order, final);
        break;
      case 'out_of_order': {
        const early = { ...this.callbackPayload(order, 'PENDING') };
        await this.deliver(order, final);
        await this.deliver(order, early);
        break;
      }
      default:
        await this.deliver(order, final);
    }
    return order;
  }

  /** Sends the callbacks held back by the `delayed` knob, newest first (so they also arrive out of order). */
  async flush(reference?: string): Promise<number> {
    let n = 0;
    for (const order of this.orders.values()) {
      if (reference && order.reference !== reference) continue;
      const held = order.held.splice(0).reverse();
      for (const p of held) {
        await this.deliver(order, p);
        n++;
      }
    }
    return n;
  }

  /** Sends the last callback again, byte for byte (a replay). */
  async resendLast(reference: string): Promise<boolean> {
    const order = this.orders.get(reference);
    const last = order?.deliveries.at(-1);
    if (!order || !last) return false;
    await this.deliver(order, last.payload);
    return true;
  }

  returnQuery(order: SimOrder): string {
    const fields = this.signed({
      merchant: order.merchant,
      reference: order.reference,
      txn_id: order.txnId,
      status: order.status,
      amount: order.amount,
      currency: order.currency,
      ts: nowSec(this.opts.clock),
    });
    return new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, String(v)])).toString();
  }

  async query(f: Fields): Promise<{ status: number; body: Fields }> {
    const order = this.orders.get(String(f.reference ?? ''));
    const knob = order?.scenario.query ?? 'normal';
    if (knob === 'timeout') await sleep(order?.scenario.delayMs ?? 30_000);
    if (knob === 'slow') await sleep(order?.scenario.delayMs ?? 1_000);
    if (!order) return { status: 200, body: this.signed({ code: CODES.notFound, message: 'order not found' }) };
    this.expireIfDue(order);
    if (knob === 'unknown') return { status: 200, body: this.signed({ code: 'XX', status: 'PROCESSING?', message: 'unexpected' }) };
    const refunded = order.refunds.filter((r) => r.status === 'SUCCESS').reduce((a, r) => a + r.amount, 0);
    const shown = knob === 'stale' ? 'PENDING' : order.status;
    return {
      status: 200,
      body: this.signed({
        code: statusToCode(shown),
        status: shown,
        amount: order.amount,
        refunded,
        txn_id: order.txnId,
        paid_at: order.paidAt ?? 0,
      }),
    };
  }

  async refund(f: Fields): Promise<{ status: number; body: Fields }> {
    const order = this.orders.get(String(f.reference ?? ''));
    if (!order) return { status: 200, body: this.signed({ code: CODES.notFound, message: 'order not found' }) };
    const knob = order.scenario.refund ?? 'normal';
    const refundReference = String(f.refund_reference ?? '');
    const amount = Number(f.amount);
    // Not idempotent, like MoMo (40, duplicated requestId): a repeated refund reference refunds
    // nothing and says duplicate; its outcome is learnt from the refund query.
    if (order.refunds.some((r) => r.refundReference === refundReference))
      return { status: 200, body: this.signed({ code: CODES.duplicate, message: 'a refund with this reference exists' }) };
    if (knob === 'timeout') await sleep(order.scenario.delayMs ?? 30_000);
    if (knob === 'fail') return { status: 200, body: this.signed({ code: CODES.failed, message: 'refund refused by provider' }) };
    if (order.status !== 'SUCCESS') return { status: 200, body: this.signed({ code: CODES.failed, message: 'order is not paid' }) };
    const refunded = order.refunds.reduce((a, r) => a + r.amount, 0);
    if (!Number.isSafeInteger(amount) || amount < 1 || refunded + amount > order.amount) {
      return { status: 200, body: this.signed({ code: CODES.amountInvalid, message: 'refund amount exceeds what is refundable' }) };
    }
    const r = {
      refundReference,
      refundId: `RF${(++this.seq).toString(36).toUpperCase()}`,
      amount,
      status: knob === 'pending' ? ('PENDING' as const) : ('SUCCESS' as const),
    };
    order.refunds.push(r);
    return { status: 200, body: this.signed({ code: r.status === 'SUCCESS' ? CODES.success : CODES.pending, refund_id: r.refundId }) };
  }

  /** A refund's status, by our refund reference (the janitor's re-check of a lost answer). */
  refundQuery(f: Fields): { status: number; body: Fields } {
    const order = this.orders.get(String(f.reference ?? ''));
    const r = order?.refunds.find((x) => x.refundReference === String(f.refund_reference ?? ''));
    if (!r) return { status: 200, body: this.signed({ code: CODES.notFound, message: 'refund not found' }) };
    return { status: 200, body: this.signed({ code: r.status === 'SUCCESS' ? CODES.success : CODES.pending, refund_id: r.refundId, amount: r.amount }) };
  }

  /** A settlement report in the sandbox's CSV layout (see the adapter's parseSettlement). */
  settlementCsv(): string {
    const lines = ['txn_id,reference,amount,fee,paid_at,status'];
    for (const o of this.orders.values()) {
      if (o.status !== 'SUCCESS') continue;
      const fee = Math.floor(o.amount / 100);
      lines.push([o.txnId, o.reference, o.amount, fee, new Date((o.paidAt ?? 0) * 1000).toISOString(), 'SUCCESS'].join(','));
    }
    return lines.join('\n') + '\n';
  }
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const vndFmt = (n: number) => new Intl.NumberFormat('vi-VN').format(n) + ' ₫';

function payPage(o: SimOrder): string {
  const done = o.status !== 'PENDING';
  return `<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Sandbox payment</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px system-ui;max-width:32rem;margin:3rem auto;padding:0 1rem}button{font-size:1rem;padding:.6rem 1rem;margin:.3rem}</style></head>
<body><h1>Sandbox provider</h1><p>This is feegate's test provider. No money moves.</p>
<p>Order <code>${esc(o.reference)}</code><br>${esc(o.description)}</p><p style="font-size:1.6rem">${vndFmt(o.amount)}</p>
${
  done
    ? `<p>Status: <b>${o.status}</b></p>`
    : `<form method="post" action="/sandbox/pay/${encodeURIComponent(o.reference)}">
<button name="result" value="success">Pay (succeed)</button><button name="result" value="fail">Fail</button><button name="result" value="cancel">Cancel</button></form>`
}
</body></html>`;
}

function fieldsOf(body: unknown): Fields | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const out: Fields = {};
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (typeof v !== 'string' && typeof v !== 'number') return null;
    out[k] = v;
  }
  return out;
}

/** Mounts the simulator's routes (prefix them with /sandbox when registering). */
export function simulatorRoutes(sim: SandboxSimulator): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    await app.register(formbody);
    type Guarded = { ok: true; f: Fields } | { ok: false; status: number; body: Fields };
    const guard = (body: unknown): Guarded => {
      const f = fieldsOf(body);
      if (!f) return { ok: false, status: 400, body: { code: CODES.badRequest, message: 'body must be a flat JSON object' } };
      if (!verify(f, sim.opts.secret)) return { ok: false, status: 200, body: { code: CODES.badSignature, message: 'invalid signature' } };
      return { ok: true, f };
    };
    const hide = { schema: { hide: true } };

    app.post('/api/orders', hide, async (req, reply) => {
      const g = guard(req.body);
      if (!g.ok) return reply.code(g.status).send(g.body);
      const f = g.f;
      const res = sim.createOrder(f);
      const order = sim.orders.get(String(f.reference));
      if (order?.scenario.create === 'timeout') await sleep(order.scenario.delayMs ?? 30_000);
      return reply.code(res.status).send(res.body);
    });
    app.post('/api/query', hide, async (req, reply) => {
      const g = guard(req.body);
      if (!g.ok) return reply.code(g.status).send(g.body);
      const f = g.f;
      const res = await sim.query(f);
      return reply.code(res.status).send(res.body);
    });
    app.post('/api/refund', hide, async (req, reply) => {
      const g = guard(req.body);
      if (!g.ok) return reply.code(g.status).send(g.body);
      const f = g.f;
      const res = await sim.refund(f);
      return reply.code(res.status).send(res.body);
    });
    app.post('/api/refund/query', hide, async (req, reply) => {
      const g = guard(req.body);
      if (!g.ok) return reply.code(g.status).send(g.body);
      const res = sim.refundQuery(g.f);
      return reply.code(res.status).send(res.body);
    });

    app.get<{ Querystring: Record<string, string> }>('/pay', hide, async (req, reply) => {
      const r = sim.open(req.query);
      if (!r.ok)
        return reply
          .code(400)
          .type('text/html; charset=utf-8')
          .send(`<!doctype html><meta charset="utf-8"><h1>Sandbox provider</h1><p>Error ${esc(r.code)}: ${esc(r.message)}</p>`);
      return reply.type('text/html; charset=utf-8').send(payPage(r.order));
    });
    app.get<{ Params: { reference: string } }>('/pay/:reference', hide, async (req, reply) => {
      const o = sim.orders.get(req.params.reference);
      if (!o) return reply.code(404).type('text/plain').send('order not found');
      return reply.type('text/html; charset=utf-8').send(payPage(o));
    });
    app.post<{ Params: { reference: string }; Body: { result?: string } }>('/pay/:reference', hide, async (req, reply) => {
      const result = req.body?.result;
      if (result !== 'success' && result !== 'fail' && result !== 'cancel')
        return reply.code(400).type('text/plain').send('result must be success, fail or cancel');
      const o = await sim.complete(req.params.reference, result);
      if (!o) return reply.code(404).type('text/plain').send('order not found');
      const sep = o.returnUrl.includes('?') ? '&' : '?';
      return reply.redirect(`${o.returnUrl}${sep}${sim.returnQuery(o)}`, 303);
    });

    // Control API: what a test (or a curious developer) uses to steer the provider.
    app.post<{ Body: Scenario }>('/control/next', hide, async (req) => {
      sim.queueScenario(req.body ?? {});
      return { queued: true };
    });
    app.post<{ Params: { reference: string }; Body: Scenario }>('/control/orders/:reference/scenario', hide, async (req, reply) => {
      const o = sim.orders.get(req.params.reference);
      if (!o) return reply.code(404).send({ message: 'order not found' });
      Object.assign(o.scenario, req.body ?? {});
      return o.scenario;
    });
    app.post<{ Params: { reference: string }; Body: { result?: string } }>('/control/orders/:reference/complete', hide, async (req, reply) => {
      const result = req.body?.result ?? 'success';
      if (result !== 'success' && result !== 'fail' && result !== 'cancel') return reply.code(400).send({ message: 'bad result' });
      const o = await sim.complete(req.params.reference, result);
      if (!o) return reply.code(404).send({ message: 'order not found' });
      return { status: o.status, deliveries: o.deliveries, return_query: sim.returnQuery(o) };
    });
    app.get<{ Params: { reference: string } }>('/control/orders/:reference', hide, async (req, reply) => {
      const o = sim.orders.get(req.params.reference);
      if (!o) return reply.code(404).send({ message: 'order not found' });
      return o;
    });
    app.post<{ Body: { reference?: string } }>('/control/flush', hide, async (req) => ({ sent: await sim.flush(req.body?.reference) }));
    app.post<{ Params: { reference: string } }>('/control/orders/:reference/resend', hide, async (req, reply) => {
      if (!(await sim.resendLast(req.params.reference))) return reply.code(404).send({ message: 'nothing to resend' });
      return { resent: true };
    });
    app.get('/control/settlement.csv', hide, async (_req, reply) => reply.type('text/csv').send(sim.settlementCsv()));
  };
}
