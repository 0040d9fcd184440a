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
import type { RefundRow } from '../payments/model.js';
import { applyRefundResult } from '../payments/refunds.js';
import type { RefundStatus } from '../../adapters/contract.js';
import { nextCheckAt } from './janitor.js';
import { askProvider } from '../payments/payments.js';

/** How long after we asked a provider may still not know a refund before we call it never made. */
export const REFUND_NOT_FOUND_GRACE_MS = 15 * 60 * 1000;

/** A refund due for a check, with what the provider knows its payment by. */
type DueRefund = RefundRow & { provider: string; payment_reference: string; payment_created_at: Date; other_refunds: number };

export async function runRefundChecks(deps: Deps, opts: { batch?: number } = {}): Promise<number> {
  const { db, clock } = deps;
  const now = clock.now();
  const { rows } = (await db.raw(
    `WITH due AS (
       UPDATE refunds r SET next_check_at = ?, check_count = r.check_count + 1
        WHERE r.id IN (SELECT id FROM refunds WHERE status IN ('pending', 'unknown') AND next_check_at <= ?
                        ORDER BY next_check_at LIMIT ? FOR UPDATE SKIP LOCKED)
        RETURNING r.*)
     SELECT due.*, p.provider, p.reference AS payment_reference, p.created_at AS payment_created_at,
            (SELECT count(*) FROM refunds o WHERE o.payment_id = due.payment_id AND o.id <> due.id AND o.status <> 'failed')::int AS other_refunds
       FROM due JOIN payments p ON p.id = due.payment_id`,
    [new Date(now.getTime() + deps.config.leaseSeconds * 1000), now, opts.batch ?? 50],
  )) as { rows: DueRefund[] };
  await Promise.all(rows.map((r) => checkRefund(deps, r)));
  return rows.length;
}

async function checkRefund(deps: Deps, r: DueRefund): Promise<void> {
  const { db, clock, config } = deps;
  const status: RefundStatus = await askProvider(deps, r.provider, r.tenant_id, 'query_refund', (adapter, ctx) => adapter.queryRefund(ctx, {
    refundReference: r.reference, paymentReference: r.payment_reference, amount: vnd(r.amount), paymentCreatedAt: r.payment_created_at,
    requestedAt: r.created_at, otherRefunds: r.other_refunds,
  }));
  const neverMade = status.notFound && clock.now().getTime() - r.created_at.getTime() > REFUND_NOT_FOUND_GRACE_MS;
  deps.metrics.janitorChecks.inc({ provider: r.provider, outcome: `refund_${neverMade ? 'never_made' : status.notFound ? 'not_found' : status.outcome}` });
  const actor = `janitor:${r.provider}`;
  if (status.outcome === 'succeeded' || status.outcome === 'failed' || neverMade) {
    const result = neverMade ? { outcome: 'failed' as const, code: status.code, message: 'the provider has no record of this refund: it was never made' } : status;
    await db.transaction((trx) => applyRefundResult(trx, deps, r.id, result, actor));
    return;
  }
  // Not settled: keep the state we hold and ask again later.
  await db('refunds').where({ id: r.id }).whereIn('status', ['pending', 'unknown']).update({ next_check_at: nextCheckAt(config, clock.now(), r.check_count) });
}
