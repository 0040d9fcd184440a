/**
 * THE transition function. Every path that changes a payment's state (checkout creation, the
 * provider's callback, the browser return, the janitor's query, refunds, admin actions) goes
 * through transitionPayment, inside the caller's transaction, with the payment row locked
 * FOR UPDATE. It checks that the move is legal, writes the new state, the journal entry, the
 * bill's paid amount and the audit record together.
 *
 * Rules that protect money:
 * - only the provider (a verified callback or a status query) can declare money received;
 * - `unknown` never becomes failed, cancelled or expired unless the provider says so;
 * - a late success after failed/cancelled/expired is accepted (the money is real) and flagged
 *   when it overpays the bill;
 * - nothing leaves succeeded except through refunds.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Trx } from '../db/knex.js';
import { prepared } from '../db/prepared.js';
import type { Clock } from '../clock.js';
import { auditRow } from '../audit/audit-log.js';
import { accounts, entryRows } from '../ledger/ledger.js';
import { vnd } from '../money.js';
import type { Checkout } from '../../adapters/contract.js';
import { paymentJson, type PaymentRow, type PaymentStatus } from './model.js';
import { FANOUT, eventRows, type EventType } from '../events/events.js';
import { outboxRow } from '../outbox/outbox.js';

/** Outbox kind that issues a succeeded payment's e-receipt (receipts/issue.ts handles it). */
export const RECEIPT_ISSUE = 'receipt.issue';

export type TransitionSource = 'api' | 'callback' | 'return' | 'query' | 'janitor' | 'refund' | 'admin';

/** Sources that speak for the provider: only they may declare money received or an unknown lost. */
const PROVIDER_SOURCES: readonly TransitionSource[] = ['callback', 'query'];

const LEGAL: Record<PaymentStatus, readonly PaymentStatus[]> = {
  created: ['pending', 'unknown', 'succeeded', 'failed', 'cancelled', 'expired'],
  pending: ['unknown', 'succeeded', 'failed', 'cancelled', 'expired'],
  unknown: ['pending', 'succeeded', 'failed', 'cancelled', 'expired'],
  failed: ['succeeded'],
  cancelled: ['succeeded'],
  expired: ['succeeded'],
  succeeded: ['partially_refunded', 'refunded'],
  partially_refunded: ['partially_refunded', 'refunded'],
  refunded: [],
};

export interface TransitionChange {
  to: PaymentStatus;
  source: TransitionSource;
  actor: string;
  providerTxnId?: string | null;
  checkout?: Checkout | null;
  failure?: { code: string; message: string } | null;
  /** For refund transitions: the new total refunded. */
  amountRefunded?: number;
  nextCheckAt?: Date | null;
}

export interface TransitionResult {
  payment: PaymentRow;
  from: PaymentStatus;
  changed: boolean;
  /** Why a requested move was not made (illegal or not allowed from this source). */
  refused?: string;
}

export function isLegal(from: PaymentStatus, to: PaymentStatus, source: TransitionSource): string | null {
  if (!LEGAL[from].includes(to)) return `${from} → ${to} is not a legal transition`;
  if (to === 'succeeded' && !PROVIDER_SOURCES.includes(source)) return 'only the provider can declare a payment succeeded';
  if (from === 'unknown' && ['failed', 'cancelled', 'expired'].includes(to) && !PROVIDER_SOURCES.includes(source)) {
    return 'an unknown payment is only closed on the provider\'s word';
  }
  if ((to === 'partially_refunded' || to === 'refunded') && source !== 'refund') return 'refund states are set by refunds';
  return null;
}

export async function lockPayment(trx: Trx, paymentId: string): Promise<PaymentRow | undefined> {
  return ((await prepared(trx, 'SELECT * FROM payments WHERE id = ? FOR UPDATE', [paymentId])) as { rows: PaymentRow[] }).rows[0];
}

/** Payment states that tell the merchant something: each emits `payment.<state>`. */
const EVENTFUL: readonly PaymentStatus[] = ['succeeded', 'failed', 'cancelled', 'expired', 'refunded', 'partially_refunded'];

/**
 * Moves a payment. `payment` is its id (the row is locked here) or a row the caller has already
 * locked FOR UPDATE in this transaction.
 */
export async function transitionPayment(trx: Trx, clock: Clock, payment: string | PaymentRow, change: TransitionChange): Promise<TransitionResult> {
  const p = typeof payment === 'string' ? await lockPayment(trx, payment) : payment;
  if (!p) throw new Error(`payment ${String(payment)} not found`);
  const from = p.status;
  const now = clock.now();
  if (from === change.to && change.to !== 'partially_refunded') {
    return { payment: p, from, changed: false };
  }
  const refused = isLegal(from, change.to, change.source);
  if (refused) return { payment: p, from, changed: false, refused };

  const patch: Partial<Record<keyof PaymentRow, unknown>> = { status: change.to, updated_at: now };
  if (change.providerTxnId) patch.provider_txn_id = change.providerTxnId;
  if (change.checkout !== undefined) patch.checkout = change.checkout === null ? null : JSON.stringify(change.checkout);
  if (change.failure !== undefined) {
    patch.failure_code = change.failure?.code ?? null;
    patch.failure_message = change.failure?.message ?? null;
  }
  if (change.nextCheckAt !== undefined) patch.next_check_at = change.nextCheckAt;
  if (change.amountRefunded !== undefined) patch.amount_refunded = change.amountRefunded;

  const amount = vnd(p.amount);
  const audit: Record<string, unknown> = { from, to: change.to, source: change.source };
  if (change.to === 'succeeded') {
    patch.succeeded_at = now;
    patch.failure_code = null;
    patch.failure_message = null;
    patch.next_check_at = null;
    if (from !== 'created' && from !== 'pending' && from !== 'unknown') audit.late_success = true;
  }
  if (['failed', 'cancelled', 'expired'].includes(change.to)) patch.next_check_at = null;
  if (change.providerTxnId) audit.provider_txn_id = change.providerTxnId;
  if (change.failure) audit.failure = change.failure;
  if (change.amountRefunded !== undefined) audit.amount_refunded = change.amountRefunded;

  // All writes of the transition in ONE statement (data-modifying CTEs): one round trip on the
  // hot path of every callback, and still one transaction with the row lock taken above.
  const upd = trx('payments').where({ id: p.id }).update(patch).returning('*').toSQL();
  const ctes: { sql: string; bindings: readonly Knex.RawBinding[] }[] = [{ sql: `p AS (${upd.sql})`, bindings: upd.bindings }];
  let overpaid = "'{}'::jsonb";
  if (change.to === 'succeeded') {
    const rows = entryRows(clock, {
      tenantId: p.tenant_id, kind: 'payment.succeeded', paymentId: p.id,
      transfers: [{ debit: accounts.providerClearing(p.provider), credit: accounts.feesCollected, amount }],
    });
    const ins = trx('ledger_transfers').insert(rows).toSQL();
    ctes.push({ sql: `l AS (${ins.sql})`, bindings: ins.bindings });
    // The bill's paid amount moves with the money; a late success may overpay it (recorded).
    ctes.push({
      sql: `b AS (UPDATE bills SET amount_paid = amount_paid + ?,
              status = CASE WHEN status IN ('cancelled', 'expired') AND amount_paid + ? < total_amount THEN status
                            WHEN amount_paid + ? >= total_amount THEN 'paid' ELSE 'partially_paid' END,
              updated_at = ? WHERE id = ? RETURNING id, tenant_id, external_ref, status, amount_paid, total_amount)`,
      bindings: [amount, amount, amount, now, p.bill_id],
    });
    overpaid = `COALESCE((SELECT jsonb_build_object('overpaid_by', amount_paid - total_amount) FROM b WHERE amount_paid > total_amount), '{}'::jsonb)`;
  }
  const a = auditRow(clock, {
    tenantId: p.tenant_id, actor: change.actor, action: `payment.${change.to}`, entityType: 'payment', entityId: p.id, data: audit,
  });
  ctes.push({
    sql: `a AS (INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, data, created_at)
            SELECT ?, ?, ?, ?, ?, ?::jsonb || ${overpaid}, ?)`,
    bindings: [a.tenant_id, a.actor, a.action, a.entity_type, a.entity_id, a.data, a.created_at],
  });
  if (EVENTFUL.includes(change.to)) {
    // The merchant hears of it through an event and the outbox, in this same statement.
    const next = { ...p, ...patch, checkout: change.checkout !== undefined ? change.checkout : p.checkout } as PaymentRow;
    const { event, outbox } = eventRows(clock, { tenantId: p.tenant_id, type: `payment.${change.to}` as EventType, objectId: p.id, data: paymentJson(next) });
    const e = trx('events').insert(event).toSQL();
    const o = trx('outbox').insert(outbox).toSQL();
    ctes.push({ sql: `e AS (${e.sql})`, bindings: e.bindings }, { sql: `o AS (${o.sql})`, bindings: o.bindings });
  }
  if (change.to === 'succeeded') {
    // bill.paid, when this payment is the one that completes the bill.
    ctes.push({
      sql: `be AS (INSERT INTO events (id, tenant_id, type, object_id, data, created_at)
              SELECT ?::uuid, tenant_id, 'bill.paid', id::text,
                     jsonb_build_object('id', id, 'object', 'bill', 'external_ref', external_ref, 'status', status,
                                        'total_amount', total_amount, 'amount_paid', amount_paid), ?::timestamptz
                FROM b WHERE amount_paid >= total_amount AND amount_paid - ? < total_amount RETURNING id, tenant_id),
            bo AS (INSERT INTO outbox (tenant_id, kind, payload, status, run_at, created_at, updated_at)
              SELECT tenant_id, '${FANOUT}', jsonb_build_object('event_id', id), 'pending', ?::timestamptz, ?::timestamptz, ?::timestamptz FROM be)`,
      bindings: [crypto.randomUUID(), now, amount, now, now, now],
    });
  }
  if (change.to === 'succeeded') {
    // The e-receipt: issued by the outbox worker, queued in this same statement (once per payment).
    const r = outboxRow(clock, { tenantId: p.tenant_id, kind: RECEIPT_ISSUE, payload: { payment_id: p.id }, dedupeKey: `receipt:${p.id}` });
    ctes.push({
      sql: `r AS (INSERT INTO outbox (tenant_id, kind, payload, dedupe_key, status, run_at, created_at, updated_at)
              VALUES (?, ?, ?::jsonb, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING)`,
      bindings: [r.tenant_id, r.kind, r.payload, r.dedupe_key, r.status, r.run_at, r.created_at, r.updated_at],
    });
  }
  const { rows } = (await prepared(trx, `WITH ${ctes.map((c) => c.sql).join(',\n')} SELECT * FROM p`, ctes.flatMap((c) => [...c.bindings]))) as {
    rows: PaymentRow[];
  };
  return { payment: rows[0]!, from, changed: true };
}
