/**
 * The double-entry journal. An entry is a set of transfers; each transfer debits one account and
 * credits another by the same positive amount, so every entry balances by construction (the
 * TigerBeetle shape). Rows are append-only (trigger); balances are always sums.
 *
 * Accounts (per tenant):
 *   provider_clearing:<provider>  what a provider has collected for the tenant and not yet settled
 *   fees_collected                fees and tuition collected (the tenant's side)
 */
import crypto from 'node:crypto';
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import { vnd, type Vnd } from '../money.js';

export const accounts = {
  providerClearing: (provider: string) => `provider_clearing:${provider}`,
  feesCollected: 'fees_collected',
} as const;

export interface Transfer {
  debit: string;
  credit: string;
  amount: Vnd;
}

export interface Entry {
  tenantId: string;
  kind: string;
  transfers: Transfer[];
  paymentId?: string;
  refundId?: string;
}

/** The rows of one journal entry (checked), for postEntry or a statement that inserts them itself. */
export function entryRows(clock: Clock, e: Entry) {
  if (e.transfers.length === 0) throw new Error('a journal entry needs at least one transfer');
  const entryId = crypto.randomUUID();
  const at = clock.now();
  return e.transfers.map((t) => {
    if (!Number.isSafeInteger(t.amount) || t.amount <= 0) throw new Error(`transfer amount ${t.amount} is not a positive integer`);
    return {
      tenant_id: e.tenantId,
      entry_id: entryId,
      kind: e.kind,
      debit_account: t.debit,
      credit_account: t.credit,
      amount: t.amount,
      payment_id: e.paymentId ?? null,
      refund_id: e.refundId ?? null,
      created_at: at,
    };
  });
}

export async function postEntry(trx: Trx, clock: Clock, e: Entry): Promise<void> {
  await trx('ledger_transfers').insert(entryRows(clock, e));
}

export interface AccountBalance {
  account: string;
  debits: Vnd;
  credits: Vnd;
  /** debits - credits */
  balance: Vnd;
}

/** Balances derived from the transfers, one row per account. */
export async function balances(db: Db | Trx, tenantId: string): Promise<AccountBalance[]> {
  const { rows } = (await db.raw(
    `SELECT account, sum(debit)::bigint AS debits, sum(credit)::bigint AS credits FROM (
       SELECT debit_account AS account, amount AS debit, 0::bigint AS credit FROM ledger_transfers WHERE tenant_id = ?
       UNION ALL
       SELECT credit_account, 0::bigint, amount FROM ledger_transfers WHERE tenant_id = ?
     ) t GROUP BY account ORDER BY account`,
    [tenantId, tenantId],
  )) as { rows: { account: string; debits: string; credits: string }[] };
  return rows.map((r) => {
    const debits = vnd(r.debits);
    const credits = vnd(r.credits);
    return { account: r.account, debits, credits, balance: debits - credits };
  });
}
