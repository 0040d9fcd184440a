/**
 * A provider's server-to-server notification, in this order:
 *   1. verify (signature, shape, freshness): a message that fails changes nothing and is logged;
 *   2. find the order;
 *   3. integrity: amount and currency must equal ours, or nothing is credited;
 *   4. dedupe on (provider, provider transaction id, event type, payment) and transition, in one transaction.
 * The answer is in the provider's own format, chosen by the adapter.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Deps } from '../deps.js';
import { vnd } from '../money.js';
import { prepared } from '../db/prepared.js';
import type { AnswerKind, CallbackAnswer, InboundHttp, PaymentAdapter, ProviderNotification } from '../../adapters/contract.js';
import { Batcher } from '../db/batcher.js';
import type { PaymentRow } from '../payments/model.js';
import { CLOSED_STATES, confirmLateSuccess, providerChange } from '../payments/payments.js';
import { transitionPayments } from '../payments/transition.js';
import { isOurReference, storable } from './references.js';

export interface NotificationResult {
  answer: CallbackAnswer;
  kind: AnswerKind;
  paymentId?: string;
}

/**
 * Natural batching of the hot path (see db/batcher.ts): callbacks that arrive together share one
 * lookup statement, and one transaction in which one statement records every message (dedupe)
 * and locks every payment named (in id order), and one more moves every payment through the one
 * transition function (set-based). Under load a batch costs five statements whatever its size
 * (lookup, BEGIN, dedupe + lock, transition, COMMIT);
 * alone, a callback goes at once. If a batch fails as a whole (a deadlock, an error in one
 * transition), nothing of it was committed and each callback is applied on its own instead
 * (the Batcher does that, for the lookup too), so one bad message never fails the others.
 */
interface Believed {
  adapter: PaymentAdapter;
  n: ProviderNotification;
  payment: PaymentRow;
  log: FastifyBaseLogger;
}
/** What applying a callback did: the provider's answer, or `confirm` (a success for a closed payment, recorded, for the provider's query to settle). */
type Applied = AnswerKind | 'confirm';

const batchers = new WeakMap<Deps, { lookup: Batcher<{ reference: string; provider: string }, PaymentRow | undefined>; apply: Batcher<Believed, Applied> }>();

function batchersFor(deps: Deps) {
  let b = batchers.get(deps);
  if (!b) {
    b = {
      lookup: new Batcher(async (items) => {
        const { rows } = (await prepared(
          deps.db,
          `SELECT p.* FROM payments p JOIN jsonb_to_recordset(?::jsonb) AS x(reference text, provider text)
             ON p.reference = x.reference AND p.provider = x.provider`,
          [JSON.stringify(items)],
        )) as { rows: PaymentRow[] };
        const byKey = new Map(rows.map((r) => [`${r.provider}\u0000${r.reference}`, r]));
        return items.map((i) => byKey.get(`${i.provider}\u0000${i.reference}`));
      }),
      apply: new Batcher((items) => applyBatch(deps, items), {
        onBatchFailed: (err, items) => {
          for (const { adapter, payment, log } of items) {
            log.info({ provider: adapter.id, payment_id: payment.id, err: (err as Error).message }, 'callback batch failed; applying this callback alone');
            deps.metrics.callbackBatchFallbacks.inc({ provider: adapter.id });
          }
        },
      }),
    };
    batchers.set(deps, b);
  }
  return b;
}

async function applyBatch(deps: Deps, items: Believed[]): Promise<Applied[]> {
  return deps.db.transaction(async (trx) => {
    const now = deps.clock.now();
    const input = items.map(({ adapter, n, payment }) => ({
      provider: adapter.id,
      provider_txn_id: n.providerTxnId,
      event_type: n.eventType,
      payment_id: payment.id,
      outcome: n.outcome,
      amount: n.amount,
      payload: n.payload,
      received_at: now.toISOString(),
    }));
    const { rows } = (await prepared(
      trx,
      `WITH input AS (SELECT * FROM jsonb_to_recordset(?::jsonb) AS x(provider text, provider_txn_id text, event_type text, payment_id uuid,
                                                                     outcome text, amount bigint, payload jsonb, received_at timestamptz)),
            ev AS (INSERT INTO provider_events (provider, provider_txn_id, event_type, payment_id, outcome, amount, payload, received_at)
                   SELECT DISTINCT ON (provider, provider_txn_id, event_type, payment_id) provider, provider_txn_id, event_type, payment_id, outcome, amount, payload, received_at
                     FROM input ON CONFLICT ON CONSTRAINT provider_events_dedupe DO NOTHING RETURNING provider, provider_txn_id, event_type, payment_id),
            -- The same provider transaction id already recorded for another payment: applied all
            -- the same (the signature names our order), but worth a log line.
            clash AS (SELECT DISTINCT i.payment_id, e.payment_id AS other FROM input i JOIN provider_events e
                        ON e.provider = i.provider AND e.provider_txn_id = i.provider_txn_id AND e.event_type = i.event_type AND e.payment_id <> i.payment_id),
            locked AS (SELECT p.* FROM payments p WHERE p.id IN (SELECT payment_id FROM input) ORDER BY p.id FOR UPDATE)
       SELECT locked.*, (SELECT coalesce(jsonb_agg(jsonb_build_array(provider, provider_txn_id, event_type, payment_id)), '[]'::jsonb) FROM ev) AS fresh,
              (SELECT coalesce(jsonb_agg(jsonb_build_array(payment_id, other)), '[]'::jsonb) FROM clash) AS clashes FROM locked`,
      [JSON.stringify(input)],
    )) as { rows: (PaymentRow & { fresh: [string, string, string, string][]; clashes: [string, string][] })[] };
    const fresh = new Set((rows[0]?.fresh ?? []).map((k) => k.join('\u0000')));
    const current = new Map<string, PaymentRow>(rows.map(({ fresh: _f, clashes: _c, ...r }) => [r.id, r as PaymentRow]));
    for (const [paymentId, other] of rows[0]?.clashes ?? []) {
      const it = items.find((x) => x.payment.id === paymentId)!;
      if (!fresh.has([it.adapter.id, it.n.providerTxnId, it.n.eventType, paymentId].join('\u0000'))) continue; // a duplicate: logged the first time
      it.log.warn(
        { provider: it.adapter.id, provider_txn_id: it.n.providerTxnId, payment_id: paymentId, other_payment_id: other },
        'provider transaction id already seen for another payment: deduplicated per payment, applied to this one',
      );
    }
    const out: Applied[] = items.map(() => 'already_confirmed');
    // Fresh messages that move a payment. A message is fresh once: the first of identical messages
    // in the batch takes it. A payment named by two different messages moves in two rounds, in
    // order, and so do two payments of one bill (so the second sees what the first paid).
    let waiting = items.flatMap(({ adapter, n }, i) => {
      if (!fresh.delete([adapter.id, n.providerTxnId, n.eventType, items[i]!.payment.id].join('\u0000'))) return [];
      const change = providerChange(n.outcome, {
        source: 'callback',
        actor: `provider:${adapter.id}`,
        providerTxnId: n.providerTxnId,
        code: n.code,
        message: n.message,
      });
      return change ? [{ i, change }] : [];
    });
    while (waiting.length) {
      const seen = new Set<string>();
      const round = waiting.filter(({ i }) => {
        const { id, bill_id } = items[i]!.payment;
        if (seen.has(id) || seen.has(bill_id)) return false;
        seen.add(id).add(bill_id);
        return true;
      });
      waiting = waiting.filter((w) => !round.includes(w));
      // A success for a payment already closed is recorded (above) but not booked on the callback's word.
      const go = round.filter(({ i, change }) => change.to !== 'succeeded' || !CLOSED_STATES.includes(current.get(items[i]!.payment.id)!.status));
      const results = await transitionPayments(
        trx,
        deps.clock,
        go.map(({ i, change }) => ({ payment: current.get(items[i]!.payment.id)!, change })),
      );
      go.forEach(({ i }, k) => {
        const r = results[k]!;
        const { payment, n, log } = items[i]!;
        if (r.changed) current.set(payment.id, r.payment);
        if (r.refused) log.info({ payment_id: payment.id, from: r.from, outcome: n.outcome, why: r.refused }, 'callback recorded, state kept');
        out[i] = r.changed ? 'ok' : 'already_confirmed';
      });
    }
    // Every success (fresh or repeated) now facing a closed payment waits for the provider's query.
    items.forEach(({ n, payment }, i) => {
      if (out[i] !== 'ok' && n.outcome === 'succeeded' && CLOSED_STATES.includes(current.get(payment.id)!.status)) out[i] = 'confirm';
    });
    return out;
  });
}

/**
 * The payment an (unverified) provider message names, and the adapter context whose credentials
 * verify it. Nothing here is believed until the adapter has verified the message. A reference not
 * in our format names no payment and is never put into a statement (a NUL in it would fail the
 * shared lookup of every callback batched with it).
 */
export async function paymentNamedBy(deps: Deps, adapter: PaymentAdapter, msg: InboundHttp) {
  const peeked = adapter.peekReference(msg);
  const reference = isOurReference(peeked) ? peeked : null;
  const payment = reference ? await batchersFor(deps).lookup.submit({ reference, provider: adapter.id }) : undefined;
  const ctx = await deps.providers.context(adapter.id, payment?.tenant_id ?? null);
  /** Whether there are credentials to verify with (none for an unknown order in production mode). */
  const canVerify = Object.keys(ctx.credentials).length > 0;
  return { reference, payment, ctx, canVerify };
}

export async function handleNotification(deps: Deps, adapter: PaymentAdapter, msg: InboundHttp, log: FastifyBaseLogger): Promise<NotificationResult> {
  const done = (kind: AnswerKind, paymentId?: string): NotificationResult => {
    deps.metrics.callbacks.inc({ provider: adapter.id, result: kind });
    return { answer: adapter.answer(kind), kind, paymentId };
  };
  const { reference, payment, ctx, canVerify } = await paymentNamedBy(deps, adapter, msg);
  if (!payment && !canVerify) {
    // Nothing to verify with and nothing to change: the provider's own "order not found".
    log.warn({ provider: adapter.id, reference }, 'callback for an unknown order');
    return done('unknown_order');
  }
  const verified = adapter.verifyNotification(ctx, msg);
  if (!verified.ok) {
    log.warn({ provider: adapter.id, reason: verified.reason, detail: verified.message, reference }, 'callback refused');
    return done(verified.reason === 'signature' ? 'bad_signature' : 'malformed');
  }
  const n = verified.notification;
  if (!storable(n)) {
    log.warn({ provider: adapter.id, reference }, 'callback refused: a field holds a NUL or a lone surrogate, which cannot be stored');
    return done('malformed');
  }
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
  const item = { adapter, n, payment, log };
  // A failed batch committed nothing; the Batcher then applies each of its callbacks alone.
  const applied = await batchersFor(deps).apply.submit(item);
  if (applied !== 'confirm') return done(applied, payment.id);
  // Defence in depth: a late success is booked only if the provider's status query confirms it.
  const settled = await confirmLateSuccess(deps, payment, `provider:${adapter.id}`);
  log.warn({ provider: adapter.id, payment_id: payment.id, settled }, 'callback reported success for a closed payment: asked the provider');
  return done(settled === 'succeeded' ? 'ok' : settled === 'refused' ? 'already_confirmed' : 'error', payment.id);
}
