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
    return "an unknown payment is only closed on the provider's word";
  }
  if ((to === 'partially_refunded' || to === 'refunded') && source !== 'refund') return 'refund states are set by refunds';
  return null;
}

export async function lockPayment(trx: Trx, paymentId: string): Promise<PaymentRow | undefined> {
  return ((await prepared(trx, 'SELECT * FROM payments WHERE id = ? FOR UPDATE', [paymentId])) as { rows: PaymentRow[] }).rows[0];
}

/** Payment states that tell the merchant something: each emits `payment.<state>`. */
const EVENTFUL: readonly PaymentStatus[] = ['succeeded', 'failed', 'cancelled', 'expired', 'refunded', 'partially_refunded'];

/** One move of one payment, for transitionPayments. */
export interface Move {
  /** The row, locked FOR UPDATE by the caller in this transaction. */
  payment: PaymentRow;
  change: TransitionChange;
}

/**
 * Moves a payment. `payment` is its id (the row is locked here) or a row the caller has already
 * locked FOR UPDATE in this transaction.
 */
export async function transitionPayment(trx: Trx, clock: Clock, payment: string | PaymentRow, change: TransitionChange): Promise<TransitionResult> {
  const p = typeof payment === 'string' ? await lockPayment(trx, payment) : payment;
  if (!p) throw new Error(`payment ${String(payment)} not found`);
  return (await transitionPayments(trx, clock, [{ payment: p, change }]))[0]!;
}

/**
 * Moves many payments (each row locked by the caller; a payment at most once, and at most one
 * payment of a bill into succeeded) in ONE statement:
 * every legal move writes its payment, journal entry, bill, audit record, events and outbox rows
 * there, set-based, so the statement's text and its round trip do not grow with the count. Moves
 * that are illegal or change nothing are answered without touching the database.
 */
export async function transitionPayments(trx: Trx, clock: Clock, moves: readonly Move[]): Promise<TransitionResult[]> {
  const now = clock.now();
  const at = now.toISOString();
  const results: TransitionResult[] = moves.map(({ payment: p, change }) => {
    if (p.status === change.to && change.to !== 'partially_refunded') return { payment: p, from: p.status, changed: false };
    const refused = isLegal(p.status, change.to, change.source);
    return refused ? { payment: p, from: p.status, changed: false, refused } : { payment: p, from: p.status, changed: true };
  });
  const go = moves.filter((_m, i) => results[i]!.changed);
  if (go.length === 0) return results;
  const money = go.filter((m) => m.change.to === 'succeeded');
  if (new Set(go.map((m) => m.payment.id)).size !== go.length || new Set(money.map((m) => m.payment.bill_id)).size !== money.length) {
    throw new Error('transitionPayments: a payment may move once per statement, and a bill receive money once');
  }

  const rows = {
    m: [] as Record<string, unknown>[],
    ledger: [] as Record<string, unknown>[],
    events: [] as Record<string, unknown>[],
    outbox: [] as Record<string, unknown>[],
  };
  for (const { payment: p, change } of go) {
    const from = p.status;
    const to = change.to;
    const succeeded = to === 'succeeded';
    const closed = ['failed', 'cancelled', 'expired'].includes(to);
    const failure = succeeded ? null : change.failure;
    const next: PaymentRow = {
      ...p,
      status: to,
      updated_at: now,
      provider_txn_id: change.providerTxnId || p.provider_txn_id,
      checkout: change.checkout !== undefined ? change.checkout : p.checkout,
      failure_code: failure !== undefined ? (failure?.code ?? null) : p.failure_code,
      failure_message: failure !== undefined ? (failure?.message ?? null) : p.failure_message,
      next_check_at: succeeded || closed ? null : change.nextCheckAt !== undefined ? change.nextCheckAt : p.next_check_at,
      amount_refunded: change.amountRefunded ?? p.amount_refunded,
      succeeded_at: succeeded ? now : p.succeeded_at,
    };
    const amount = vnd(p.amount);
    const audit: Record<string, unknown> = { from, to, source: change.source };
    if (succeeded && !['created', 'pending', 'unknown'].includes(from)) audit.late_success = true;
    if (change.providerTxnId) audit.provider_txn_id = change.providerTxnId;
    if (change.failure) audit.failure = change.failure;
    if (change.amountRefunded !== undefined) audit.amount_refunded = change.amountRefunded;
    const a = auditRow(clock, { tenantId: p.tenant_id, actor: change.actor, action: `payment.${to}`, entityType: 'payment', entityId: p.id, data: audit });
    rows.m.push({
      id: p.id,
      tenant_id: p.tenant_id,
      status: to,
      provider_txn_id: change.providerTxnId || null,
      set_checkout: change.checkout !== undefined,
      checkout: next.checkout,
      set_failure: failure !== undefined,
      failure_code: next.failure_code,
      failure_message: next.failure_message,
      set_next_check: succeeded || closed || change.nextCheckAt !== undefined,
      next_check_at: next.next_check_at,
      amount_refunded: change.amountRefunded ?? null,
      succeeded_at: succeeded ? at : null,
      bill_id: p.bill_id,
      paid: succeeded ? amount : 0,
      bill_event_id: crypto.randomUUID(),
      actor: a.actor,
      action: a.action,
      audit: a.data,
    });
    if (succeeded) {
      rows.ledger.push(
        ...entryRows(clock, {
          tenantId: p.tenant_id,
          kind: 'payment.succeeded',
          paymentId: p.id,
          transfers: [{ debit: accounts.providerClearing(p.provider), credit: accounts.feesCollected, amount }],
        }),
      );
      // The e-receipt: issued by the outbox worker, queued here (once per payment).
      rows.outbox.push(outboxRow(clock, { tenantId: p.tenant_id, kind: RECEIPT_ISSUE, payload: { payment_id: p.id }, dedupeKey: `receipt:${p.id}` }));
    }
    if (EVENTFUL.includes(to)) {
      // The merchant hears of it through an event and the outbox, in this same statement.
      const { event, outbox } = eventRows(clock, { tenantId: p.tenant_id, type: `payment.${to}` as EventType, objectId: p.id, data: paymentJson(next) });
      rows.events.push(event);
      rows.outbox.push(outbox);
    }
  }
  const { rows: updated } = (await prepared(trx, TRANSITION_SQL, [at, ...[rows.m, rows.ledger, rows.events, rows.outbox].map((r) => JSON.stringify(r))])) as {
    rows: PaymentRow[];
  };
  const byId = new Map(updated.map((r) => [r.id, r]));
  return results.map((r) => (r.changed ? { ...r, payment: byId.get(r.payment.id)! } : r));
}

/**
 * The statement behind transitionPayments. Inputs: now, the moves, journal transfers, events, and
 * outbox rows (a receipt's row carries a dedupe key), each a JSON array of the rows as the row
 * builders make them; their JSON documents (audit data, event data, outbox payload) arrive as the
 * text those builders serialised and are cast here, not parsed and re-serialised in JS. The payment that completes its bill emits
 * bill.paid (and its fan-out); a late success may overpay a bill, and its audit record says by how much.
 */
const TRANSITION_SQL = `
WITH n AS (SELECT ?::timestamptz AS at),
m AS (
  SELECT * FROM jsonb_to_recordset(?::jsonb) AS x(
    id uuid, tenant_id uuid, status text, provider_txn_id text, set_checkout boolean, checkout jsonb,
    set_failure boolean, failure_code text, failure_message text, set_next_check boolean, next_check_at timestamptz,
    amount_refunded bigint, succeeded_at timestamptz, bill_id uuid, paid bigint, bill_event_id uuid, actor text, action text, audit text)),
p AS (
  UPDATE payments SET status = m.status, updated_at = (SELECT at FROM n),
         provider_txn_id = COALESCE(m.provider_txn_id, payments.provider_txn_id),
         checkout = CASE WHEN m.set_checkout THEN m.checkout ELSE payments.checkout END,
         failure_code = CASE WHEN m.set_failure THEN m.failure_code ELSE payments.failure_code END,
         failure_message = CASE WHEN m.set_failure THEN m.failure_message ELSE payments.failure_message END,
         next_check_at = CASE WHEN m.set_next_check THEN m.next_check_at ELSE payments.next_check_at END,
         amount_refunded = COALESCE(m.amount_refunded, payments.amount_refunded),
         succeeded_at = COALESCE(m.succeeded_at, payments.succeeded_at)
    FROM m WHERE payments.id = m.id RETURNING payments.*),
l AS (
  INSERT INTO ledger_transfers (tenant_id, entry_id, kind, debit_account, credit_account, amount, payment_id, refund_id, created_at)
  SELECT tenant_id, entry_id, kind, debit_account, credit_account, amount, payment_id, refund_id, created_at
    FROM jsonb_to_recordset(?::jsonb) AS x(tenant_id uuid, entry_id uuid, kind text, debit_account text, credit_account text, amount bigint,
                                          payment_id uuid, refund_id uuid, created_at timestamptz)),
b AS (
  UPDATE bills SET amount_paid = bills.amount_paid + m.paid,
         status = CASE WHEN bills.status IN ('cancelled', 'expired') AND bills.amount_paid + m.paid < bills.total_amount THEN bills.status
                       WHEN bills.amount_paid + m.paid >= bills.total_amount THEN 'paid' ELSE 'partially_paid' END,
         updated_at = (SELECT at FROM n)
    FROM m WHERE bills.id = m.bill_id AND m.paid > 0
  RETURNING bills.id, bills.tenant_id, bills.external_ref, bills.status, bills.amount_paid, bills.total_amount, m.paid, m.bill_event_id),
a AS (
  INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, data, created_at)
  SELECT m.tenant_id, m.actor, m.action, 'payment', m.id::text,
         m.audit::jsonb || COALESCE((SELECT jsonb_build_object('overpaid_by', b.amount_paid - b.total_amount) FROM b
                                WHERE b.id = m.bill_id AND m.paid > 0 AND b.amount_paid > b.total_amount), '{}'::jsonb), (SELECT at FROM n)
    FROM m),
e AS (
  INSERT INTO events (id, tenant_id, type, object_id, data, created_at)
  SELECT id, tenant_id, type, object_id, data::jsonb, created_at
    FROM jsonb_to_recordset(?::jsonb) AS x(id uuid, tenant_id uuid, type text, object_id text, data text, created_at timestamptz)),
o AS (
  INSERT INTO outbox (tenant_id, kind, payload, dedupe_key, status, run_at, created_at, updated_at)
  SELECT tenant_id, kind, payload::jsonb, dedupe_key, status, run_at, created_at, updated_at
    FROM jsonb_to_recordset(?::jsonb) AS x(tenant_id uuid, kind text, payload text, dedupe_key text, status text, run_at timestamptz,
                                          created_at timestamptz, updated_at timestamptz)
  ON CONFLICT (dedupe_key) DO NOTHING),
be AS (
  -- bill.paid, when the payment is the one that completes the bill.
  INSERT INTO events (id, tenant_id, type, object_id, data, created_at)
  SELECT bill_event_id, tenant_id, 'bill.paid', id::text,
         jsonb_build_object('id', id, 'object', 'bill', 'external_ref', external_ref, 'status', status,
                            'total_amount', total_amount, 'amount_paid', amount_paid), (SELECT at FROM n)
    FROM b WHERE amount_paid >= total_amount AND amount_paid - paid < total_amount RETURNING id, tenant_id, created_at),
bo AS (
  INSERT INTO outbox (tenant_id, kind, payload, status, run_at, created_at, updated_at)
  SELECT tenant_id, '${FANOUT}', jsonb_build_object('event_id', id), 'pending', created_at, created_at, created_at FROM be)
SELECT * FROM p`;
