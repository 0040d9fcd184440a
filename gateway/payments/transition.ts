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
import type { Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import { appendAudit } from '../audit/audit-log.js';
import { accounts, postEntry } from '../ledger/ledger.js';
import { vnd } from '../money.js';
import type { Checkout } from '../../adapters/contract.js';
import type { PaymentRow, PaymentStatus } from './model.js';

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
  return (await trx('payments').where({ id: paymentId }).forUpdate().first()) as PaymentRow | undefined;
}

export async function transitionPayment(trx: Trx, clock: Clock, paymentId: string, change: TransitionChange): Promise<TransitionResult> {
  const p = await lockPayment(trx, paymentId);
  if (!p) throw new Error(`payment ${paymentId} not found`);
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
    await postEntry(trx, clock, {
      tenantId: p.tenant_id,
      kind: 'payment.succeeded',
      paymentId: p.id,
      transfers: [{ debit: accounts.providerClearing(p.provider), credit: accounts.feesCollected, amount }],
    });
    // The bill's paid amount moves with the money; a late success may overpay it.
    const [bill] = (await trx('bills')
      .where({ id: p.bill_id })
      .update({
        amount_paid: trx.raw('amount_paid + ?', [amount]),
        status: trx.raw(
          `CASE WHEN status IN ('cancelled', 'expired') AND amount_paid + ? < total_amount THEN status
                WHEN amount_paid + ? >= total_amount THEN 'paid' ELSE 'partially_paid' END`,
          [amount, amount],
        ),
        updated_at: now,
      })
      .returning(['amount_paid', 'total_amount', 'status'])) as { amount_paid: string; total_amount: string; status: string }[];
    if (bill && vnd(bill.amount_paid) > vnd(bill.total_amount)) {
      audit.overpaid_by = vnd(bill.amount_paid) - vnd(bill.total_amount);
    }
    if (from !== 'created' && from !== 'pending' && from !== 'unknown') audit.late_success = true;
  }
  if (['failed', 'cancelled', 'expired'].includes(change.to)) patch.next_check_at = null;
  if (change.providerTxnId) audit.provider_txn_id = change.providerTxnId;
  if (change.failure) audit.failure = change.failure;
  if (change.amountRefunded !== undefined) audit.amount_refunded = change.amountRefunded;

  const [updated] = (await trx('payments').where({ id: p.id }).update(patch).returning('*')) as PaymentRow[];
  await appendAudit(trx, clock, {
    tenantId: p.tenant_id,
    actor: change.actor,
    action: `payment.${change.to}`,
    entityType: 'payment',
    entityId: p.id,
    data: audit,
  });
  return { payment: updated!, from, changed: true };
}
