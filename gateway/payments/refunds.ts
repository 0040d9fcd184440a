/**
 * Refunds, full and partial. The amount is reserved under the payment's row lock (pending,
 * unknown and succeeded refunds all count), so concurrent refunds can never exceed what was
 * collected; the provider is called outside the transaction, once, as a stored request
 * (provider-requests.ts) committed `sent` first; the outcome is applied under the lock again. A
 * refund whose answer was lost stays `unknown` until the provider is asked; one resumed by a retry
 * after a crash is asked about, never sent again.
 */
import crypto from 'node:crypto';
import type { Trx } from '../db/knex.js';
import type { Deps } from '../deps.js';
import { appendAudit } from '../audit/audit-log.js';
import { emitEvent } from '../events/events.js';
import { enqueue } from '../outbox/outbox.js';
import { fail } from '../errors.js';
import { vnd } from '../money.js';
import { accounts, postEntry } from '../ledger/ledger.js';
import { claimIdempotency, completeIdempotency, setRecoveryPoint, type IdemContext } from '../http/idempotency.js';
import type { ApiKeyPrincipal } from '../tenants/api-keys.js';
import type { RefundResult, RefundStatus } from '../../adapters/contract.js';
import { markSent, prepareRequest, recordAnswer, refundRequestId, requestOfRefund, type ProviderRequestRow } from './provider-requests.js';
import { refundJson, type PaymentRow, type RefundRow } from './model.js';
import { lockPayment, transitionPayment } from './transition.js';
import { adapterFor, askProvider } from './payments.js';
import { nextCheckAt } from '../jobs/janitor.js';

export interface RefundInput {
  amount?: number;
  reason?: string;
}

/**
 * When the janitor first asks about a refund still pending: after the longest a provider's refund
 * call may take (MoMo asks for 30 s), so it does not race the call in progress.
 */
export const REFUND_FIRST_CHECK_SECONDS = 120;

/** Sum of refunds that hold part of the payment: everything but failed ones. */
async function reserved(trx: Trx, paymentId: string): Promise<number> {
  const [row] = (await trx('refunds').where({ payment_id: paymentId }).whereNot({ status: 'failed' }).sum({ s: 'amount' })) as [{ s: string | number | null }];
  return vnd(row.s);
}

export async function createRefund(deps: Deps, who: ApiKeyPrincipal, paymentId: string, input: RefundInput, idem?: IdemContext) {
  const { db, clock, config } = deps;
  const actor = `api_key:${who.keyId}`;
  const { refund, payment, request } = await db.transaction(async (trx) => {
    const recovery = await claimIdempotency(trx, clock, idem, config.idempotencyLockSeconds);
    const recoverId = recovery?.refund_id as string | undefined;
    if (recoverId) {
      const r = (await trx('refunds').where({ id: recoverId }).first()) as RefundRow;
      return { refund: r, payment: (await trx('payments').where({ id: r.payment_id }).first()) as PaymentRow, request: await requestOfRefund(trx, r.id) };
    }
    const p = (await trx('payments').where({ id: paymentId, tenant_id: who.tenantId }).forUpdate().first()) as PaymentRow | undefined;
    if (!p) fail('FEEGATE_ERR_PAYMENT_NOT_FOUND');
    if (p.status !== 'succeeded' && p.status !== 'partially_refunded') {
      fail('FEEGATE_ERR_PAYMENT_NOT_REFUNDABLE', `A ${p.status} payment cannot be refunded`, { payment_status: p.status });
    }
    const refundable = vnd(p.amount) - (await reserved(trx, p.id));
    if (refundable <= 0) fail('FEEGATE_ERR_PAYMENT_NOT_REFUNDABLE', 'Nothing is left to refund', { refundable: 0 });
    const amount = input.amount ?? refundable;
    if (amount > refundable) fail('FEEGATE_ERR_REFUND_EXCEEDS_REFUNDABLE', `At most ${refundable} VND can be refunded`, { refundable });
    const now = clock.now();
    const [r] = (await trx('refunds')
      .insert({
        tenant_id: p.tenant_id,
        payment_id: p.id,
        reference: `RF${crypto.randomBytes(10).toString('hex').toUpperCase()}`,
        amount,
        status: 'pending',
        reason: input.reason ?? '',
        created_at: now,
        updated_at: now,
        // If this process dies before the provider's answer is applied, the janitor asks later.
        next_check_at: new Date(now.getTime() + REFUND_FIRST_CHECK_SECONDS * 1000),
      })
      .returning('*')) as [RefundRow];
    const request = await prepareRequest(trx, clock, {
      tenantId: p.tenant_id,
      provider: p.provider,
      kind: 'refund',
      requestId: refundRequestId(r.reference),
      paymentId: p.id,
      refundId: r.id,
    });
    await appendAudit(trx, clock, {
      tenantId: p.tenant_id,
      actor,
      action: 'refund.created',
      entityType: 'refund',
      entityId: r.id,
      data: { payment_id: p.id, amount, reason: input.reason ?? '' },
    });
    await setRecoveryPoint(trx, idem, { refund_id: r.id });
    return { refund: r, payment: p, request };
  });

  let current = refund;
  if (refund.status === 'pending' && request?.state === 'prepared') adapterFor(deps, payment.provider); // enabled here, or refused before anything is sent
  // Ours to send, once: the request is committed `sent` before the provider hears of it.
  const mine = refund.status === 'pending' && request?.state === 'prepared' && (await markSent(db, clock, request.id));
  if (mine) {
    const result: RefundResult = await askProvider(deps, payment.provider, payment.tenant_id, 'refund', (a, ctx) =>
      a.refund(ctx, {
        refundReference: refund.reference,
        paymentReference: payment.reference,
        providerTxnId: payment.provider_txn_id,
        amount: vnd(refund.amount),
        paymentAmount: vnd(payment.amount),
        reason: refund.reason,
        paidAt: payment.succeeded_at,
        requestedAt: refund.created_at,
      }),
    );
    current = await db.transaction(async (trx) => {
      const r = await applyRefundResult(trx, deps, refund.id, result, actor);
      await recordAnswer(trx, clock, request!.id, { ...summary(result), source: 'call' });
      await completeIdempotency(trx, clock, idem, 201, refundJson(r));
      return r;
    });
  } else if (refund.status === 'pending') {
    // Resumed after a crash: the request may have reached the provider (or predates stored
    // requests, or was closed as never sent), so it is asked about and booked from the answer,
    // never sent again.
    current = await settleFromQuery(deps, refund, payment, request, actor, idem);
  } else {
    await completeIdempotency(db, clock, idem, 201, refundJson(current));
  }
  return refundJson(current);
}

const summary = (r: RefundResult) => ({ outcome: r.outcome, code: r.code, message: r.message, providerId: r.providerRefundId });

/** What the provider knows of a refund (outside any transaction): its refund query. */
export async function queryRefundAt(
  deps: Deps,
  r: RefundRow,
  p: Pick<PaymentRow, 'provider' | 'reference' | 'created_at'>,
  otherRefunds: number,
): Promise<RefundStatus> {
  return askProvider(deps, p.provider, r.tenant_id, 'query_refund', (adapter, ctx) =>
    adapter.queryRefund(ctx, {
      refundReference: r.reference,
      paymentReference: p.reference,
      amount: vnd(r.amount),
      paymentCreatedAt: p.created_at,
      requestedAt: r.created_at,
      otherRefunds,
    }),
  );
}

/**
 * A resumed refund whose request may have reached the provider: its final word is booked (and
 * the request answered); anything else leaves it pending for the janitor's checks. The
 * Idempotency-Key is completed with the refund as it then stands.
 */
async function settleFromQuery(
  deps: Deps,
  refund: RefundRow,
  payment: PaymentRow,
  request: ProviderRequestRow | undefined,
  actor: string,
  idem?: IdemContext,
): Promise<RefundRow> {
  const { db, clock } = deps;
  const [{ n }] = (await db('refunds').where({ payment_id: payment.id }).whereNot({ id: refund.id }).whereNot({ status: 'failed' }).count({ n: '*' })) as [
    { n: string | number },
  ];
  const status = await queryRefundAt(deps, refund, payment, Number(n));
  return db.transaction(async (trx) => {
    let r: RefundRow;
    if (status.outcome === 'succeeded' || status.outcome === 'failed') {
      r = await applyRefundResult(trx, deps, refund.id, status, actor);
      await recordAnswer(trx, clock, request?.id, { ...summary(status), source: 'query' });
    } else {
      r = ((await trx('refunds').where({ id: refund.id }).first()) as RefundRow | undefined) ?? refund;
    }
    await completeIdempotency(trx, clock, idem, 201, refundJson(r));
    return r;
  });
}

/** Applies a provider's refund answer: journal, payment state and audit in one transaction. */
export async function applyRefundResult(trx: Trx, deps: Deps, refundId: string, result: RefundResult, actor: string): Promise<RefundRow> {
  const { clock } = deps;
  const r0 = (await trx('refunds').where({ id: refundId }).first('payment_id')) as { payment_id: string };
  const p = (await lockPayment(trx, r0.payment_id))!;
  const r = (await trx('refunds').where({ id: refundId }).forUpdate().first()) as RefundRow;
  if (r.status === 'succeeded' || r.status === 'failed') return r; // already final
  const now = clock.now();
  const final = result.outcome === 'succeeded' || result.outcome === 'failed';
  const patch: Record<string, unknown> = {
    updated_at: now,
    status: result.outcome,
    next_check_at: final ? null : nextCheckAt(deps.config, now, r.check_count),
  };
  if (result.providerRefundId) patch.provider_refund_id = result.providerRefundId;
  if (result.outcome === 'failed') patch.failure_message = result.message ?? result.code ?? 'refused';
  if (result.outcome === 'unknown') patch.failure_message = result.message ?? null;
  const [updated] = (await trx('refunds').where({ id: r.id }).update(patch).returning('*')) as RefundRow[];
  if (result.outcome === 'succeeded') {
    const amount = vnd(r.amount);
    await postEntry(trx, clock, {
      tenantId: p.tenant_id,
      kind: 'refund.succeeded',
      paymentId: p.id,
      refundId: r.id,
      transfers: [{ debit: accounts.feesCollected, credit: accounts.providerClearing(p.provider), amount }],
    });
    const total = vnd(p.amount_refunded) + amount;
    await transitionPayment(trx, clock, p.id, {
      to: total >= vnd(p.amount) ? 'refunded' : 'partially_refunded',
      source: 'refund',
      actor,
      amountRefunded: total,
    });
  }
  if (result.outcome === 'succeeded') {
    // The adjustment record of the e-receipt, issued by the outbox worker (once per refund).
    await enqueue(trx, clock, { tenantId: p.tenant_id, kind: 'receipt.adjust', payload: { refund_id: r.id }, dedupeKey: `receipt-adjust:${r.id}` });
  }
  if (result.outcome === 'succeeded' || result.outcome === 'failed') {
    await emitEvent(trx, clock, { tenantId: p.tenant_id, type: `refund.${result.outcome}`, objectId: r.id, data: refundJson(updated!) });
  }
  if (result.outcome !== r.status) {
    await appendAudit(trx, clock, {
      tenantId: p.tenant_id,
      actor,
      action: `refund.${result.outcome}`,
      entityType: 'refund',
      entityId: r.id,
      data: { payment_id: p.id, amount: vnd(r.amount), provider_refund_id: result.providerRefundId ?? null },
    });
  }
  return updated!;
}
