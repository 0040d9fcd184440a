/**
 * Stored provider requests: every outbound operation that makes something at the provider (a
 * remote checkout's create, a refund) is written before it is sent, under a stable id derived
 * from our own reference, and moves `prepared → sent → answered | unknown`:
 * - `prepared` is written in the transaction that creates the payment or refund;
 * - `sent` is committed on its own, by one conditional statement, BEFORE the provider is called:
 *   only the process whose statement moved it may call, and from then on the provider may have
 *   it, so nobody calls again;
 * - `answered` / `unknown` are written with the booking of the answer (or of a later query's).
 * A request found `sent` or `unknown` after a crash is asked about (status or refund query) and
 * booked from that answer; it is never sent again. Queries are not stored: asking is harmless.
 */
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';

export type RequestKind = 'checkout_create' | 'refund';
export type RequestState = 'prepared' | 'sent' | 'answered' | 'unknown';

export interface ProviderRequestRow {
  id: string;
  tenant_id: string;
  provider: string;
  kind: RequestKind;
  request_id: string;
  attempt: number;
  payment_id: string;
  refund_id: string | null;
  state: RequestState;
  outcome: string | null;
  answer: Record<string, unknown> | null;
  created_at: Date;
  sent_at: Date | null;
  answered_at: Date | null;
  updated_at: Date;
}

/**
 * Our stable request ids. A refund's is its reference (MoMo's requestId and orderId, VNPay's
 * vnp_RequestId, the sandbox's refund_reference; ZaloPay's m_refund_id is built from it). A
 * checkout create's is the payment reference, with the attempt number after the first (there is one
 * attempt per payment today: a new attempt is a new payment with a new reference).
 */
export const refundRequestId = (refundReference: string): string => refundReference;
export const checkoutRequestId = (paymentReference: string, attempt = 1): string => (attempt === 1 ? paymentReference : `${paymentReference}-${attempt}`);

export async function prepareRequest(
  trx: Trx,
  clock: Clock,
  r: { tenantId: string; provider: string; kind: RequestKind; requestId: string; paymentId: string; refundId?: string; attempt?: number },
): Promise<ProviderRequestRow> {
  const now = clock.now();
  const [row] = (await trx('provider_requests')
    .insert({
      tenant_id: r.tenantId,
      provider: r.provider,
      kind: r.kind,
      request_id: r.requestId,
      attempt: r.attempt ?? 1,
      payment_id: r.paymentId,
      refund_id: r.refundId ?? null,
      state: 'prepared',
      created_at: now,
      updated_at: now,
    })
    .returning('*')) as [ProviderRequestRow];
  return row;
}

/** The request a refund was (or is to be) sent as. */
export async function requestOfRefund(q: Db | Trx, refundId: string): Promise<ProviderRequestRow | undefined> {
  return (await q('provider_requests').where({ refund_id: refundId }).first()) as ProviderRequestRow | undefined;
}

/** The latest checkout create of a payment. */
export async function checkoutRequestOf(q: Db | Trx, paymentId: string): Promise<ProviderRequestRow | undefined> {
  return (await q('provider_requests').where({ payment_id: paymentId, kind: 'checkout_create' }).orderBy('attempt', 'desc').first()) as
    ProviderRequestRow | undefined;
}

/**
 * Moves a prepared request to `sent`, committed before the call (run it outside any transaction).
 * True only for the one caller that moved it: that caller, and nobody else, may call the provider.
 */
export async function markSent(db: Db, clock: Clock, id: string): Promise<boolean> {
  const now = clock.now();
  const n = await db('provider_requests').where({ id, state: 'prepared' }).update({ state: 'sent', sent_at: now, updated_at: now });
  return Number(n) === 1;
}

/** What a provider answered (or a query told), kept with the request: no secrets, no URLs. */
export interface AnswerSummary {
  outcome: string;
  code?: string;
  message?: string;
  providerId?: string;
  /** `call`: the answer to the request itself; `query`: a later status or refund query's. */
  source: 'call' | 'query';
}

/**
 * Records the answer with its booking (same transaction). A final answer makes the request
 * `answered`; no answer leaves it `unknown` (to be asked about). An answered request stays so.
 */
export async function recordAnswer(trx: Trx, clock: Clock, id: string | undefined, a: AnswerSummary): Promise<void> {
  if (!id) return;
  const now = clock.now();
  const answered = a.outcome !== 'unknown';
  await trx('provider_requests')
    .where({ id })
    .whereIn('state', ['sent', 'unknown'])
    .update({
      state: answered ? 'answered' : 'unknown',
      outcome: a.outcome,
      updated_at: now,
      answered_at: answered ? now : null,
      answer: JSON.stringify({ source: a.source, code: a.code ?? null, message: a.message?.slice(0, 500) ?? null, provider_id: a.providerId ?? null }),
    });
}

/**
 * Closes a request that was never sent (still `prepared`, as it was read), in the transaction that
 * books that: false when it was sent meanwhile, and then nothing may be booked as never made.
 */
export async function closeUnsent(trx: Trx, clock: Clock, id: string, message: string): Promise<boolean> {
  const now = clock.now();
  const n = await trx('provider_requests')
    .where({ id, state: 'prepared' })
    .update({ state: 'answered', outcome: 'not_sent', answered_at: now, updated_at: now, answer: JSON.stringify({ source: 'query', message }) });
  return Number(n) === 1;
}
