/**
 * The janitor: a periodic sweep (never only event-driven) of payments in flight whose next check
 * is due. It asks the provider (outside any transaction) and applies the answer through the one
 * transition function:
 * - the provider's final word (succeeded / failed / cancelled) is applied, after the same integrity
 *   check as a callback (amount);
 * - a checkout past its deadline that the provider still calls pending, or does not know, expires;
 * - `unknown` stays unknown unless the provider answers: a timeout is never a failure;
 * - otherwise the next check is scheduled: by default 1 min, then 5 min x5, then 1 h, then daily.
 * It also expires open bills past their due date with no payment in flight.
 * Safe in N processes: payments are claimed with FOR UPDATE SKIP LOCKED and a lease.
 */
import type { Deps } from '../deps.js';
import { vnDate } from '../clock.js';
import { vnd } from '../money.js';
import { auditRow } from '../audit/audit-log.js';
import { eventRows } from '../events/events.js';
import type { PaymentRow } from '../payments/model.js';
import { lockPayment, transitionPayment } from '../payments/transition.js';
import { applyProviderOutcome, askProvider } from '../payments/payments.js';
import type { Config } from '../config.js';
import type { StatusResult } from '../../adapters/contract.js';

/** After a checkout's deadline, how long the provider may still report before we expire it. */
export const EXPIRY_GRACE_MS = 10 * 60 * 1000;

/** When to ask again after `checkCount` checks, on the configured schedule (its last step repeats). */
export function nextCheckAt(config: Pick<Config, 'janitorScheduleSeconds'>, now: Date, checkCount: number): Date {
  const schedule = config.janitorScheduleSeconds;
  return new Date(now.getTime() + (schedule[Math.min(checkCount, schedule.length - 1)] ?? 3600) * 1000);
}

export async function runJanitor(deps: Deps, opts: { batch?: number } = {}): Promise<number> {
  const { db, clock } = deps;
  const now = clock.now();
  const { rows } = (await db.raw(
    `UPDATE payments p SET next_check_at = ?, check_count = p.check_count + 1
      WHERE p.id IN (SELECT id FROM payments
                      WHERE status IN ('created', 'pending', 'unknown') AND next_check_at <= ?
                      ORDER BY next_check_at LIMIT ? FOR UPDATE SKIP LOCKED)
      RETURNING p.*`,
    [new Date(now.getTime() + deps.config.leaseSeconds * 1000), now, opts.batch ?? 50],
  )) as { rows: PaymentRow[] };
  await Promise.all(rows.map((p) => checkPayment(deps, p)));
  return rows.length + (await expireBills(deps));
}

async function checkPayment(deps: Deps, p: PaymentRow): Promise<void> {
  const { db, clock, config } = deps;
  // The deadline is judged at the moment we asked: an answer is only as new as its question.
  const askedAt = clock.now();
  const result: StatusResult = await askProvider(deps, p.provider, p.tenant_id, 'query', (adapter, ctx) =>
    adapter.queryStatus(ctx, { reference: p.reference, providerTxnId: p.provider_txn_id, amount: vnd(p.amount), createdAt: p.created_at }),
  );
  deps.metrics.janitorChecks.inc({ provider: p.provider, outcome: result.notFound ? 'not_found' : result.outcome });
  const actor = `janitor:${p.provider}`;
  await db.transaction(async (trx) => {
    const locked = (await lockPayment(trx, p.id))!;
    if (!['created', 'pending', 'unknown'].includes(locked.status)) return; // settled meanwhile (a callback)
    const now = clock.now();
    const pastDeadline = askedAt.getTime() > locked.expires_at.getTime() + EXPIRY_GRACE_MS;
    const final = result.outcome === 'succeeded' || result.outcome === 'failed' || result.outcome === 'cancelled';
    let checkCount = locked.check_count;
    if (final && result.amount !== undefined && result.amount !== vnd(locked.amount)) {
      deps.metrics.callbacks.inc({ provider: p.provider, result: 'query_amount_mismatch' });
    } else if (final) {
      await applyProviderOutcome(trx, deps, locked, result.outcome, {
        source: 'query',
        actor,
        providerTxnId: result.providerTxnId,
        code: result.code,
        message: result.message,
      });
      return;
    } else if (locked.status === 'unknown' && result.outcome === 'pending') {
      // The provider knows the order and calls it open: it is pending, on the provider's word. It is
      // not expired on this same answer (a create we could not see may have given the order a later
      // life at the provider): the next check asks again, soon, and applies the pending rules.
      await transitionPayment(trx, clock, locked, { to: 'pending', source: 'query', actor });
      checkCount = 0;
    } else if (pastDeadline && (result.notFound || result.outcome === 'pending')) {
      // Asked after the deadline and its grace (VNPay, ZaloPay, PayGov and the sandbox get our
      // deadline as the order's own expiry, after which the payer cannot pay): the provider does
      // not know the order, or still calls it pending: abandoned. A success reported later counts.
      const r = await transitionPayment(trx, clock, locked, {
        to: 'expired',
        source: result.notFound ? 'query' : 'janitor',
        actor,
        failure: { code: 'checkout_expired', message: result.notFound ? 'the payer never reached the provider' : 'not paid before the deadline' },
      });
      if (r.changed) return;
    }
    await trx('payments')
      .where({ id: p.id })
      .update({ next_check_at: nextCheckAt(config, now, checkCount) });
  });
}

/**
 * The bill-expiry sweep (bindings: now, today). It reads only open bills already past their due
 * date, through bills_open_due (migration 0014), oldest due first; never every bill each pass.
 */
export const EXPIRE_BILLS_SQL = `UPDATE bills b SET status = 'expired', updated_at = ?
        WHERE b.id IN (SELECT id FROM bills WHERE status = 'open' AND due_date IS NOT NULL AND due_date < ?::date
                         AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.bill_id = bills.id AND p.status IN ('created', 'pending', 'unknown'))
                       ORDER BY due_date LIMIT 200 FOR UPDATE SKIP LOCKED)
        RETURNING b.id, b.tenant_id, b.external_ref, b.total_amount`;

/** Open bills past their due date (Vietnam time) with no payment in flight expire. */
async function expireBills(deps: Deps): Promise<number> {
  const { db, clock } = deps;
  const today = vnDate(clock.now());
  return db.transaction(async (trx) => {
    const { rows } = (await trx.raw(EXPIRE_BILLS_SQL, [clock.now(), today])) as {
      rows: { id: string; tenant_id: string; external_ref: string; total_amount: string }[];
    };
    if (rows.length === 0) return 0;
    await trx('audit_log').insert(
      rows.map((b) =>
        auditRow(clock, { tenantId: b.tenant_id, actor: 'janitor', action: 'bill.expired', entityType: 'bill', entityId: b.id, data: { due_before: today } }),
      ),
    );
    const evs = rows.map((b) =>
      eventRows(clock, {
        tenantId: b.tenant_id,
        type: 'bill.expired',
        objectId: b.id,
        data: { id: b.id, object: 'bill', external_ref: b.external_ref, status: 'expired', total_amount: vnd(b.total_amount) },
      }),
    );
    await trx('events').insert(evs.map((e) => e.event));
    await trx('outbox').insert(evs.map((e) => e.outbox));
    return rows.length;
  });
}
