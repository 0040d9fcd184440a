/**
 * Refund re-checks: a periodic sweep of refunds whose outcome we do not know, because the
 * provider's answer was lost (`unknown`), it said "processing" (`pending`), or this process died
 * between asking and recording (`pending`, first checked after REFUND_FIRST_CHECK_SECONDS). For
 * each one due, the janitor asks the provider about that refund (outside any transaction) and:
 * - applies its final word (succeeded: journal, payment state, receipt adjustment; failed: the
 *   reserved amount is released), through the same applyRefundResult as the refund call;
 * - a refund the provider has no record of, REFUND_NOT_FOUND_GRACE_MS after we asked, never
 *   reached it: it fails and releases its amount (nothing was paid back);
 * - anything else (no answer, "processing", an answer it cannot attribute) waits for the next
 *   check, on the janitor's schedule. A refund is never failed on a timeout.
 * Safe in N processes: refunds are claimed with FOR UPDATE SKIP LOCKED and a lease.
 */
import type { Deps } from '../deps.js';
import { vnd } from '../money.js';
import type { PaymentRow, RefundRow } from '../payments/model.js';
import { applyRefundResult } from '../payments/refunds.js';
import type { RefundStatus } from '../../adapters/contract.js';
import { nextCheckDelaySeconds } from './janitor.js';

/** How long after we asked a provider may still not know a refund before we call it never made. */
export const REFUND_NOT_FOUND_GRACE_MS = 15 * 60 * 1000;

type DueRefund = RefundRow & { payment: PaymentRow; other_refunds: number };

export async function runRefundChecks(deps: Deps, opts: { batch?: number } = {}): Promise<number> {
  const { db, clock } = deps;
  const now = clock.now();
  const { rows } = (await db.raw(
    `WITH due AS (
       UPDATE refunds r SET next_check_at = ?, check_count = r.check_count + 1
        WHERE r.id IN (SELECT id FROM refunds WHERE status IN ('pending', 'unknown') AND next_check_at <= ?
                        ORDER BY next_check_at LIMIT ? FOR UPDATE SKIP LOCKED)
        RETURNING r.*)
     SELECT due.*, to_jsonb(p) AS payment,
            (SELECT count(*) FROM refunds o WHERE o.payment_id = due.payment_id AND o.id <> due.id AND o.status <> 'failed')::int AS other_refunds
       FROM due JOIN payments p ON p.id = due.payment_id`,
    [new Date(now.getTime() + deps.config.leaseSeconds * 1000), now, opts.batch ?? 50],
  )) as { rows: DueRefund[] };
  await Promise.all(rows.map((r) => checkRefund(deps, r)));
  return rows.length;
}

async function checkRefund(deps: Deps, r: DueRefund): Promise<void> {
  const { db, clock, config } = deps;
  const p = r.payment;
  const adapter = deps.providers.get(p.provider);
  let status: RefundStatus;
  if (!adapter) {
    status = { outcome: 'unknown', message: `provider ${p.provider} is not enabled` };
  } else {
    try {
      const ctx = await deps.providers.context(adapter.id, p.tenant_id);
      status = await adapter.queryRefund(ctx, {
        refundReference: r.reference, paymentReference: p.reference, providerTxnId: p.provider_txn_id, providerRefundId: r.provider_refund_id,
        amount: vnd(r.amount), paymentAmount: vnd(p.amount), paymentCreatedAt: new Date(p.created_at), requestedAt: new Date(r.created_at),
        paidAt: p.succeeded_at ? new Date(p.succeeded_at) : null, otherRefunds: r.other_refunds,
      });
    } catch (err) {
      status = { outcome: 'unknown', message: `adapter error: ${(err as Error).message}` };
    }
  }
  const neverMade = status.notFound && clock.now().getTime() - new Date(r.created_at).getTime() > REFUND_NOT_FOUND_GRACE_MS;
  deps.metrics.janitorChecks.inc({ provider: p.provider, outcome: `refund_${neverMade ? 'never_made' : status.notFound ? 'not_found' : status.outcome}` });
  const actor = `janitor:${p.provider}`;
  if (status.outcome === 'succeeded' || status.outcome === 'failed' || neverMade) {
    const result = neverMade ? { outcome: 'failed' as const, code: status.code, message: 'the provider has no record of this refund: it was never made' } : status;
    await db.transaction((trx) => applyRefundResult(trx, deps, r.id, result, actor));
    return;
  }
  // Not settled: keep the state we hold and ask again later.
  const delay = nextCheckDelaySeconds(config.janitorScheduleSeconds, r.check_count);
  await db('refunds').where({ id: r.id }).whereIn('status', ['pending', 'unknown']).update({ next_check_at: new Date(clock.now().getTime() + delay * 1000) });
}
