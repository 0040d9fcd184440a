/**
 * Refund re-checks: a periodic sweep of refunds whose outcome we do not know, because the
 * provider's answer was lost (`unknown`), it said "processing" (`pending`), or this process died
 * between asking and recording (`pending`, first checked after REFUND_FIRST_CHECK_SECONDS). For
 * each one due, the janitor asks the provider about that refund (outside any transaction) and:
 * - applies its final word (succeeded: journal, payment state, receipt adjustment; failed: the
 *   reserved amount is released), through the same applyRefundResult as the refund call;
 * - a refund the provider has no record of, REFUND_NOT_FOUND_GRACE_MS after its request was sent
 *   (or created, for one never sent), never reached it: it fails and releases its amount (nothing
 *   was paid back);
 * - anything else (no answer, "processing", an answer it cannot attribute) waits for the next
 *   check, on the janitor's schedule. A refund is never failed on a timeout.
 * Safe in N processes: refunds are claimed with FOR UPDATE SKIP LOCKED and a lease.
 */
import type { Deps } from '../deps.js';
import type { RefundRow } from '../payments/model.js';
import { applyRefundResult, queryRefundAt } from '../payments/refunds.js';
import { closeUnsent, recordAnswer, type RequestState } from '../payments/provider-requests.js';
import type { RefundStatus } from '../../adapters/contract.js';
import { nextCheckAt } from './janitor.js';

/** How long after we asked a provider may still not know a refund before we call it never made. */
export const REFUND_NOT_FOUND_GRACE_MS = 15 * 60 * 1000;

/** A refund due for a check, with what the provider knows its payment by. */
type DueRefund = RefundRow & {
  provider: string;
  payment_reference: string;
  payment_created_at: Date;
  other_refunds: number;
  /** Its stored request (none for refunds older than stored requests). */
  request_row_id: string | null;
  request_state: RequestState | null;
  request_sent_at: Date | null;
};

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
            (SELECT count(*) FROM refunds o WHERE o.payment_id = due.payment_id AND o.id <> due.id AND o.status <> 'failed')::int AS other_refunds,
            pr.id AS request_row_id, pr.state AS request_state, pr.sent_at AS request_sent_at
       FROM due JOIN payments p ON p.id = due.payment_id LEFT JOIN provider_requests pr ON pr.refund_id = due.id`,
    [new Date(now.getTime() + deps.config.leaseSeconds * 1000), now, opts.batch ?? 50],
  )) as { rows: DueRefund[] };
  await Promise.all(rows.map((r) => checkRefund(deps, r)));
  return rows.length;
}

async function checkRefund(deps: Deps, r: DueRefund): Promise<void> {
  const { db, clock, config } = deps;
  const status: RefundStatus = await queryRefundAt(
    deps,
    r,
    { provider: r.provider, reference: r.payment_reference, created_at: r.payment_created_at },
    r.other_refunds,
  );
  // The grace runs from when the request was sent (a request never sent is as old as the refund).
  const askedAt = r.request_sent_at ?? r.created_at;
  const neverMade = status.notFound && clock.now().getTime() - askedAt.getTime() > REFUND_NOT_FOUND_GRACE_MS;
  deps.metrics.janitorChecks.inc({ provider: r.provider, outcome: `refund_${neverMade ? 'never_made' : status.notFound ? 'not_found' : status.outcome}` });
  const actor = `janitor:${r.provider}`;
  if (status.outcome === 'succeeded' || status.outcome === 'failed' || neverMade) {
    const result = neverMade
      ? { outcome: 'failed' as const, code: status.code, message: 'the provider has no record of this refund: it was never made' }
      : status;
    await db.transaction(async (trx) => {
      // A request still `prepared` as read was never sent: closed here, unless it was sent meanwhile
      // (a resumed retry), and then nothing is booked as never made.
      if (neverMade && r.request_row_id && r.request_state === 'prepared' && !(await closeUnsent(trx, clock, r.request_row_id, result.message!))) return;
      await applyRefundResult(trx, deps, r.id, result, actor);
      await recordAnswer(trx, clock, r.request_row_id ?? undefined, {
        outcome: result.outcome,
        code: result.code,
        message: result.message,
        providerId: result.providerRefundId,
        source: 'query',
      });
    });
    return;
  }
  // Not settled: keep the state we hold and ask again later.
  await db('refunds')
    .where({ id: r.id })
    .whereIn('status', ['pending', 'unknown'])
    .update({ next_check_at: nextCheckAt(config, clock.now(), r.check_count) });
}
