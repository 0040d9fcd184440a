/**
 * A provider's server-to-server notification, in this order:
 *   1. verify (signature, shape, freshness): a message that fails changes nothing and is logged;
 *   2. find the order;
 *   3. integrity: amount and currency must equal ours, or nothing is credited;
 *   4. dedupe on (provider, provider transaction id, event type) and transition, in one transaction.
 * The answer is in the provider's own format, chosen by the adapter.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Deps } from '../deps.js';
import { vnd } from '../money.js';
import { prepared } from '../db/prepared.js';
import type { AnswerKind, CallbackAnswer, InboundHttp, PaymentAdapter } from '../../adapters/contract.js';
import type { PaymentRow } from '../payments/model.js';
import { applyProviderOutcome } from '../payments/payments.js';

export interface NotificationResult {
  answer: CallbackAnswer;
  kind: AnswerKind;
  paymentId?: string;
}

/**
 * The payment an (unverified) provider message names, and the adapter context whose credentials
 * verify it. Nothing here is believed until the adapter has verified the message.
 */
export async function paymentNamedBy(deps: Deps, adapter: PaymentAdapter, msg: InboundHttp) {
  const reference = adapter.peekReference(msg);
  const payment = reference
    ? ((await prepared(deps.db, 'SELECT * FROM payments WHERE reference = ? AND provider = ?', [reference, adapter.id])) as { rows: PaymentRow[] }).rows[0]
    : undefined;
  return { reference, payment, ctx: await deps.providers.context(adapter.id, payment?.tenant_id ?? null) };
}

export async function handleNotification(deps: Deps, adapter: PaymentAdapter, msg: InboundHttp, log: FastifyBaseLogger): Promise<NotificationResult> {
  const done = (kind: AnswerKind, paymentId?: string): NotificationResult => {
    deps.metrics.callbacks.inc({ provider: adapter.id, result: kind });
    return { answer: adapter.answer(kind), kind, paymentId };
  };
  const { reference, payment, ctx } = await paymentNamedBy(deps, adapter, msg);
  const verified = adapter.verifyNotification(ctx, msg);
  if (!verified.ok) {
    log.warn({ provider: adapter.id, reason: verified.reason, detail: verified.message, reference }, 'callback refused');
    return done(verified.reason === 'signature' ? 'bad_signature' : 'malformed');
  }
  const n = verified.notification;
  if (!payment || n.reference !== payment.reference) {
    log.warn({ provider: adapter.id, reference: n.reference }, 'callback for an unknown order');
    return done('unknown_order');
  }
  if (n.amount !== vnd(payment.amount) || n.currency !== payment.currency) {
    log.warn(
      { provider: adapter.id, payment_id: payment.id, expected: vnd(payment.amount), got: n.amount, currency: n.currency },
      'callback amount or currency differs from the payment: not credited',
    );
    return done('amount_mismatch', payment.id);
  }
  const kind = await deps.db.transaction(async (trx): Promise<AnswerKind> => {
    // Dedupe and lock in one statement: record the message (once), take the payment row.
    const { rows } = (await prepared(
      trx,
      `WITH ev AS (INSERT INTO provider_events (provider, provider_txn_id, event_type, payment_id, outcome, amount, payload, received_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT ON CONSTRAINT provider_events_dedupe DO NOTHING RETURNING id)
       SELECT p.*, EXISTS (SELECT 1 FROM ev) AS fresh FROM payments p WHERE p.id = ? FOR UPDATE`,
      [adapter.id, n.providerTxnId, n.eventType, payment.id, n.outcome, n.amount, JSON.stringify(n.payload), deps.clock.now(), payment.id],
    )) as { rows: (PaymentRow & { fresh: boolean })[] };
    const { fresh, ...locked } = rows[0]!;
    if (!fresh) return 'already_confirmed';
    const r = await applyProviderOutcome(trx, deps, locked, n.outcome, {
      source: 'callback', actor: `provider:${adapter.id}`, providerTxnId: n.providerTxnId, code: n.code, message: n.message,
    });
    if (r?.refused) log.info({ payment_id: payment.id, from: r.from, outcome: n.outcome, why: r.refused }, 'callback recorded, state kept');
    return r && r.changed ? 'ok' : 'already_confirmed';
  });
  return done(kind, payment.id);
}
