/**
 * Provider-facing routes: /v1/notify/<provider> (server-to-server, in the provider's own method and
 * format; no API key, the signature is the authentication) and /v1/return/<provider> (the payer's
 * browser coming back; shows the status we hold and never credits anything).
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { CallbackAnswer, InboundHttp, PaymentAdapter } from '../../adapters/contract.js';
import { handleNotification, paymentNamedBy } from './notifications.js';

const PUBLIC = { auth: false, rateLimit: false } as const;

/**
 * A provider's notification is a few hundred bytes (PayGov's, with its fee items, a few KiB);
 * anything much larger is not one, and is refused before it is read whole.
 */
export const NOTIFY_BODY_LIMIT = 64 * 1024;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STATUS_TEXT: Record<string, [string, string]> = {
  succeeded: ['Thanh toán thành công', 'Payment succeeded'],
  refunded: ['Đã hoàn tiền', 'Refunded'],
  partially_refunded: ['Đã hoàn một phần', 'Partly refunded'],
  pending: ['Đang xử lý', 'Processing: this page refreshes by itself'],
  created: ['Đang xử lý', 'Processing: this page refreshes by itself'],
  unknown: ['Đang xác minh với đơn vị thanh toán', 'Being confirmed with the provider'],
  failed: ['Thanh toán không thành công', 'Payment failed'],
  cancelled: ['Đã huỷ', 'Cancelled'],
  expired: ['Đã hết hạn', 'Expired'],
};

function statusPage(reply: FastifyReply, code: number, title: string, body: string, refresh = false) {
  return reply.code(code).type('text/html; charset=utf-8').header('cache-control', 'no-store')
    .send(`<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">${refresh ? '<meta http-equiv="refresh" content="3">' : ''}
<style>body{font:16px system-ui;max-width:32rem;margin:3rem auto;padding:0 1rem}</style></head><body>${body}</body></html>`);
}

function sendAnswer(reply: FastifyReply, a: CallbackAnswer) {
  reply.code(a.status);
  if (a.contentType) reply.type(a.contentType);
  return reply.send(a.body ?? '');
}

const unavailablePage = (reply: FastifyReply) =>
  statusPage(reply.header('retry-after', '5'), 503, 'Tạm thời gián đoạn', '<h1>Tạm thời gián đoạn</h1><p>Please reload this page in a moment.</p>');

function inbound(req: { method: string; query: unknown; headers: InboundHttp['headers'] }, rawBody: string): InboundHttp {
  return { method: req.method, query: (req.query ?? {}) as InboundHttp['query'], headers: req.headers, rawBody };
}

export async function callbackRoutes(app: FastifyInstance): Promise<void> {
  const deps = app.deps;
  // Callbacks are verified over the exact bytes received: keep bodies as strings here.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: NOTIFY_BODY_LIMIT }, (_req, body, done) => done(null, body));

  // Whatever goes wrong on these routes, the provider gets an answer in its own format: a refusal
  // for what it sent (oversize body, bad encoding) or its retry code for our own failure, never
  // Fastify's JSON error, which no provider reads (VNPay would retry an empty 500 as "no answer").
  const routeAdapter = new Map<string, { adapter: PaymentAdapter; notify: boolean }>();
  app.setErrorHandler(async (error: FastifyError, req, reply) => {
    const route = routeAdapter.get(req.routeOptions.url ?? '');
    const ours = !(error.statusCode && error.statusCode >= 400 && error.statusCode < 500);
    if (ours) req.log.error({ err: error }, 'callback route failed');
    else req.log.warn({ err: error.message, code: error.code }, 'callback request refused');
    if (!route) {
      const code = ours ? 'FEEGATE_ERR_INTERNAL' : 'FEEGATE_ERR_MALFORMED_BODY';
      return reply.code(ours ? 500 : error.statusCode!).send({ error: { code, message: ours ? 'Internal error' : error.message } });
    }
    if (!route.notify) {
      return ours
        ? unavailablePage(reply)
        : statusPage(reply, 400, 'Không xác minh được', '<h1>Không xác minh được kết quả</h1><p>We could not verify this return link.</p>');
    }
    deps.metrics.callbacks.inc({ provider: route.adapter.id, result: ours ? 'error' : 'malformed' });
    return sendAnswer(reply, route.adapter.answer(ours ? 'error' : 'malformed'));
  });

  for (const adapter of deps.providers.list()) {
    if (adapter.sandbox && !deps.config.sandbox) continue;
    routeAdapter.set(`/v1/notify/${adapter.id}`, { adapter, notify: true });
    routeAdapter.set(`/v1/return/${adapter.id}`, { adapter, notify: false });
    app.route({
      method: adapter.notifyMethod,
      url: `/v1/notify/${adapter.id}`,
      config: PUBLIC,
      schema: { tags: ['callbacks'], summary: `${adapter.displayName}: server-to-server notification (IPN)` },
      handler: async (req, reply) => {
        const result = await handleNotification(deps, adapter, inbound(req, typeof req.body === 'string' ? req.body : ''), req.log);
        return sendAnswer(reply, result.answer);
      },
    });

    app.get(
      `/v1/return/${adapter.id}`,
      {
        config: PUBLIC,
        schema: { tags: ['callbacks'], summary: `${adapter.displayName}: the payer's browser returns here` },
      },
      async (req, reply) => {
        const msg = inbound(req, '');
        const { reference, payment, ctx } = await paymentNamedBy(deps, adapter, msg);
        // No payment: refused as it is, without verifying (production mode has no credentials for it).
        const verified = payment ? adapter.verifyReturn(ctx, msg) : { ok: false as const, message: 'unknown order' };
        if (!verified.ok || !payment) {
          req.log.warn({ provider: adapter.id, reference, reason: verified.ok ? 'unknown order' : verified.message }, 'return refused');
          return statusPage(reply, 400, 'Không xác minh được', '<h1>Không xác minh được kết quả</h1><p>We could not verify this return link.</p>');
        }
        // What the browser says is only a hint; the page shows what we hold.
        if (payment.return_url) {
          const url = new URL(payment.return_url);
          url.searchParams.set('payment_id', payment.id);
          url.searchParams.set('status', payment.status);
          return reply.redirect(url.toString(), 303);
        }
        const [vi, en] = STATUS_TEXT[payment.status] ?? [payment.status, payment.status];
        const amount = new Intl.NumberFormat('vi-VN').format(Number(payment.amount));
        return statusPage(
          reply,
          200,
          vi,
          `<h1>${esc(vi)}</h1><p>${esc(en)}</p><p>Mã giao dịch / reference: <code>${esc(payment.reference)}</code><br>Số tiền / amount: ${amount} ₫</p>`,
          ['pending', 'created', 'unknown'].includes(payment.status),
        );
      },
    );
  }
}
