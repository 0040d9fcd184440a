/**
 * Bills: what an agency or school asks a payer to pay. A procedure fee names the portal dossier,
 * tuition the student, school year and term. The total is the sum of the line items. A bill is
 * unique per tenant on the caller's external reference, so the portal can retry safely: the same
 * bill again returns the existing one, other content under the same reference is a conflict.
 */
import crypto from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import { vnDate } from '../clock.js';
import { appendAudit } from '../audit/audit-log.js';
import { emitEvent } from '../events/events.js';
import { FeegateError, fail, isUniqueViolation } from '../errors.js';
import { MAX_AMOUNT, sum, vnd } from '../money.js';
import { claimIdempotency, completeIdempotency, type IdemContext } from '../http/idempotency.js';
import type { ApiKeyPrincipal } from '../tenants/api-keys.js';

export type BillKind = 'procedure_fee' | 'tuition' | 'charge';
export type BillStatus = 'open' | 'partially_paid' | 'paid' | 'cancelled' | 'expired';

export interface BillInput {
  external_ref: string;
  kind: BillKind;
  dossier_code?: string;
  procedure_code?: string;
  student_code?: string;
  school_year?: string;
  term?: string;
  description?: string;
  payer: { name: string; id_number?: string; phone?: string; email?: string };
  items: { fee_code: string; name: string; amount: number; legal_basis?: string }[];
  total_amount?: number;
  due_date?: string;
  allow_partial?: boolean;
  metadata?: Record<string, string>;
}

export interface BillRow {
  id: string;
  tenant_id: string;
  external_ref: string;
  kind: BillKind;
  dossier_code: string | null;
  procedure_code: string | null;
  student_code: string | null;
  school_year: string | null;
  term: string | null;
  description: string;
  payer: BillInput['payer'];
  currency: 'VND';
  total_amount: string | number;
  amount_paid: string | number;
  allow_partial: boolean;
  due_date: string | Date | null;
  status: BillStatus;
  metadata: Record<string, string>;
  request_hash: string;
  created_at: Date;
  updated_at: Date;
}

interface ItemRow {
  bill_id: string;
  position: number;
  fee_code: string;
  name: string;
  amount: string | number;
  legal_basis: string;
}

/** A SQL date as YYYY-MM-DD: pg gives the string (see db/knex.ts), PGlite a UTC-midnight Date. */
export function dateOnly(d: string | Date | null): string | null {
  if (d === null) return null;
  return typeof d === 'string' ? d.slice(0, 10) : d.toISOString().slice(0, 10);
}

export function billJson(b: BillRow, items: ItemRow[]) {
  const total = vnd(b.total_amount);
  const paid = vnd(b.amount_paid);
  return {
    id: b.id,
    object: 'bill' as const,
    external_ref: b.external_ref,
    kind: b.kind,
    dossier_code: b.dossier_code,
    procedure_code: b.procedure_code,
    student_code: b.student_code,
    school_year: b.school_year,
    term: b.term,
    description: b.description,
    payer: b.payer,
    items: items
      .sort((x, y) => x.position - y.position)
      .map((i) => ({ fee_code: i.fee_code, name: i.name, amount: vnd(i.amount), legal_basis: i.legal_basis })),
    currency: b.currency,
    total_amount: total,
    amount_paid: paid,
    amount_due: Math.max(0, total - paid),
    allow_partial: b.allow_partial,
    due_date: dateOnly(b.due_date),
    status: b.status,
    metadata: b.metadata,
    created_at: b.created_at.toISOString(),
    updated_at: b.updated_at.toISOString(),
  };
}
export type BillJson = ReturnType<typeof billJson>;

function checkKindFields(input: BillInput): void {
  const missing = (f: string[]) => f.filter((k) => !(input as unknown as Record<string, unknown>)[k]);
  const need = input.kind === 'procedure_fee' ? missing(['dossier_code']) : input.kind === 'tuition' ? missing(['student_code', 'school_year', 'term']) : [];
  if (need.length) {
    fail('FEEGATE_ERR_VALIDATION', `A ${input.kind} bill needs ${need.join(', ')}`, {
      issues: need.map((f) => ({ field: `body.${f}`, problem: 'required for this kind' })),
    });
  }
}

export async function createBill(
  db: Db,
  clock: Clock,
  who: ApiKeyPrincipal,
  input: BillInput,
  idem?: IdemContext,
  lockSeconds = 60,
): Promise<{ status: 200 | 201; bill: BillJson }> {
  checkKindFields(input);
  // Summed as bigint: 100 items of 10^15 pass the schema one by one and leave Number's safe range.
  const exact = input.items.reduce((acc, i) => acc + BigInt(i.amount), 0n);
  if (exact > BigInt(MAX_AMOUNT)) fail('FEEGATE_ERR_AMOUNT_INVALID', 'The bill total is above 10^15 VND', { items_sum: exact.toString() });
  const total = sum(input.items.map((i) => i.amount));
  if (input.total_amount !== undefined && input.total_amount !== total) {
    fail('FEEGATE_ERR_AMOUNT_MISMATCH', `total_amount ${input.total_amount} is not the sum of the items (${total})`, { items_sum: total });
  }
  const requestHash = crypto
    .createHash('sha256')
    .update(canonicalize({ ...input, total_amount: total }) ?? '')
    .digest('hex');
  const now = clock.now();
  return db.transaction(async (trx) => {
    await claimIdempotency(trx, clock, idem, lockSeconds);
    const existing = (await trx('bills').where({ tenant_id: who.tenantId, external_ref: input.external_ref }).first()) as BillRow | undefined;
    let result: { status: 200 | 201; bill: BillJson };
    if (existing) {
      if (existing.request_hash !== requestHash) {
        throw new FeegateError('FEEGATE_ERR_BILL_EXISTS', undefined, { bill_id: existing.id });
      }
      result = { status: 200, bill: billJson(existing, await items(trx, existing.id)) };
    } else {
      let bill: BillRow;
      try {
        [bill] = (await trx('bills')
          .insert({
            tenant_id: who.tenantId,
            external_ref: input.external_ref,
            kind: input.kind,
            dossier_code: input.dossier_code ?? null,
            procedure_code: input.procedure_code ?? null,
            student_code: input.student_code ?? null,
            school_year: input.school_year ?? null,
            term: input.term ?? null,
            description: input.description ?? '',
            payer: JSON.stringify(input.payer),
            total_amount: total,
            allow_partial: input.allow_partial ?? false,
            due_date: input.due_date ?? null,
            metadata: JSON.stringify(input.metadata ?? {}),
            request_hash: requestHash,
            created_at: now,
            updated_at: now,
          })
          .returning('*')) as [BillRow];
      } catch (err) {
        // A concurrent create with the same reference won: the caller retries and gets it.
        if (isUniqueViolation(err, 'bills_tenant_external_ref'))
          throw new FeegateError('FEEGATE_ERR_IDEMPOTENCY_IN_PROGRESS', 'A bill with this external_ref is being created');
        throw err;
      }
      const rows = input.items.map((i, position) => ({
        bill_id: bill.id,
        position,
        fee_code: i.fee_code,
        name: i.name,
        amount: i.amount,
        legal_basis: i.legal_basis ?? '',
      }));
      await trx('bill_items').insert(rows);
      await appendAudit(trx, clock, {
        tenantId: who.tenantId,
        actor: `api_key:${who.keyId}`,
        action: 'bill.created',
        entityType: 'bill',
        entityId: bill.id,
        data: { external_ref: input.external_ref, kind: input.kind, total_amount: total },
      });
      result = { status: 201, bill: billJson(bill, rows) };
    }
    await completeIdempotency(trx, clock, idem, result.status, result.bill);
    return result;
  });
}

async function items(db: Db | Trx, billId: string): Promise<ItemRow[]> {
  return (await db('bill_items').where({ bill_id: billId })) as ItemRow[];
}

export async function getBill(db: Db | Trx, tenantId: string, billId: string): Promise<BillJson> {
  const bill = (await db('bills').where({ id: billId, tenant_id: tenantId }).first()) as BillRow | undefined;
  if (!bill) fail('FEEGATE_ERR_BILL_NOT_FOUND');
  return billJson(bill, await items(db, bill.id));
}

export async function loadItems(db: Db, billIds: string[]): Promise<Map<string, ItemRow[]>> {
  const out = new Map<string, ItemRow[]>();
  if (billIds.length === 0) return out;
  for (const row of (await db('bill_items').whereIn('bill_id', billIds)) as ItemRow[]) {
    const list = out.get(row.bill_id) ?? [];
    list.push(row);
    out.set(row.bill_id, list);
  }
  return out;
}

/** Is the bill payable now? Returns the reason when it is not. */
export function notPayableReason(bill: BillRow, now: Date): string | null {
  if (bill.status === 'paid') return 'the bill is already paid';
  if (bill.status === 'cancelled') return 'the bill is cancelled';
  if (bill.status === 'expired') return 'the bill has expired';
  const due = dateOnly(bill.due_date);
  if (due && due < vnDate(now)) return `the bill was due on ${due}`;
  return null;
}

export async function cancelBill(db: Db, clock: Clock, who: ApiKeyPrincipal, billId: string, idem?: IdemContext, lockSeconds = 60): Promise<BillJson> {
  return db.transaction(async (trx) => {
    await claimIdempotency(trx, clock, idem, lockSeconds);
    const bill = (await trx('bills').where({ id: billId, tenant_id: who.tenantId }).forUpdate().first()) as BillRow | undefined;
    if (!bill) fail('FEEGATE_ERR_BILL_NOT_FOUND');
    if (bill.status !== 'cancelled') {
      if (bill.status !== 'open') fail('FEEGATE_ERR_BILL_NOT_CANCELLABLE', `A ${bill.status} bill cannot be cancelled`);
      const inFlight = await trx('payments').where({ bill_id: bill.id }).whereIn('status', ['created', 'pending', 'unknown']).first('id');
      if (inFlight) fail('FEEGATE_ERR_BILL_NOT_CANCELLABLE', 'The bill has a payment in progress', { payment_id: (inFlight as { id: string }).id });
      const [row] = (await trx('bills').where({ id: bill.id }).update({ status: 'cancelled', updated_at: clock.now() }).returning('*')) as BillRow[];
      await appendAudit(trx, clock, {
        tenantId: who.tenantId,
        actor: `api_key:${who.keyId}`,
        action: 'bill.cancelled',
        entityType: 'bill',
        entityId: bill.id,
        data: {},
      });
      Object.assign(bill, row);
      const json = billJson(bill, await items(trx, bill.id));
      await emitEvent(trx, clock, { tenantId: who.tenantId, type: 'bill.cancelled', objectId: bill.id, data: json });
    }
    const json = billJson(bill, await items(trx, bill.id));
    await completeIdempotency(trx, clock, idem, 200, json);
    return json;
  });
}
