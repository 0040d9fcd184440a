/** Payment and refund rows, their states, and their API shape. */
import { vnd } from '../money.js';
import type { Checkout } from '../../adapters/contract.js';

export const PAYMENT_STATUSES = ['created', 'pending', 'unknown', 'succeeded', 'failed', 'cancelled', 'expired', 'partially_refunded', 'refunded'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export interface PaymentRow {
  id: string;
  tenant_id: string;
  bill_id: string;
  reference: string;
  provider: string;
  amount: string | number;
  currency: 'VND';
  status: PaymentStatus;
  amount_refunded: string | number;
  provider_txn_id: string | null;
  checkout: Checkout | null;
  return_url: string | null;
  failure_code: string | null;
  failure_message: string | null;
  expires_at: Date;
  next_check_at: Date | null;
  check_count: number;
  created_at: Date;
  updated_at: Date;
  succeeded_at: Date | null;
}

export interface RefundRow {
  id: string;
  tenant_id: string;
  payment_id: string;
  reference: string;
  amount: string | number;
  status: 'pending' | 'succeeded' | 'failed' | 'unknown';
  reason: string;
  provider_refund_id: string | null;
  failure_message: string | null;
  created_at: Date;
  updated_at: Date;
  /** When the janitor next asks the provider (pending and unknown refunds only). */
  next_check_at: Date | null;
  check_count: number;
}

export function paymentJson(p: PaymentRow) {
  return {
    id: p.id,
    object: 'payment' as const,
    bill_id: p.bill_id,
    reference: p.reference,
    provider: p.provider,
    amount: vnd(p.amount),
    amount_refunded: vnd(p.amount_refunded),
    currency: p.currency,
    status: p.status,
    provider_transaction_id: p.provider_txn_id,
    checkout: p.checkout ?? null,
    return_url: p.return_url,
    failure: p.failure_code ? { code: p.failure_code, message: p.failure_message ?? '' } : null,
    expires_at: p.expires_at.toISOString(),
    created_at: p.created_at.toISOString(),
    updated_at: p.updated_at.toISOString(),
    succeeded_at: p.succeeded_at ? p.succeeded_at.toISOString() : null,
  };
}
export type PaymentJson = ReturnType<typeof paymentJson>;

export function refundJson(r: RefundRow) {
  return {
    id: r.id,
    object: 'refund' as const,
    payment_id: r.payment_id,
    reference: r.reference,
    amount: vnd(r.amount),
    status: r.status,
    reason: r.reason,
    provider_refund_id: r.provider_refund_id,
    failure_message: r.failure_message,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  };
}
