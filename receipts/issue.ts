/**
 * Issuing receipts. A succeeded payment queues `receipt.issue` (in the transition's own statement);
 * a succeeded refund queues `receipt.adjust`. The outbox worker then, in ONE transaction:
 * takes the next number of the series for the year (row lock on the counter), builds and signs
 * the XML, stores the exact signed bytes, emits `receipt.issued` and completes the outbox row.
 * A crash anywhere rolls all of it back, the number included: no gap, no duplicate, and the unique
 * indexes make a second receipt for the same payment or refund impossible.
 *
 * A receipt is dated (Ngày lập, and the year of its series) when the money moved: the payment's
 * success, the refund's; never when the worker happens to run, so a backlog or a certificate
 * missing over New Year keeps a 31 December payment in that year's series. The signing time is
 * the moment of signing, read after the counter lock is held.
 */
import crypto from 'node:crypto';
import type { Db, Trx } from '../gateway/db/knex.js';
import type { Deps } from '../gateway/deps.js';
import type { Tenant } from '../gateway/tenants/tenants.js';
import { vnDate } from '../gateway/clock.js';
import { vnd } from '../gateway/money.js';
import { FeegateError } from '../gateway/errors.js';
import { emitEvents } from '../gateway/events/events.js';
import { completeRow, completeRows, type OutboxHandler, type OutboxRow } from '../gateway/outbox/outbox.js';
import { TEMPLATES, checkContent, formatNumber, type DocType, type ReceiptContent } from './templates.js';
import { signDocument, vnLocalTime } from './sign.js';

export const ISSUE = 'receipt.issue';
export const ADJUST = 'receipt.adjust';

export interface SeriesRow {
  id: string;
  tenant_id: string;
  doc_type: DocType;
  template_symbol: string;
  series_letters: string;
  is_default: boolean;
  created_at: Date;
}

export interface ReceiptRow {
  id: string;
  tenant_id: string;
  series_id: string;
  kind: 'original' | 'adjustment';
  payment_id: string;
  refund_id: string | null;
  original_id: string | null;
  template_symbol: string;
  series_symbol: string;
  year: number;
  number: number;
  lookup_code: string;
  amount: number | string;
  issued_at: Date;
  signing_time: string;
  cert_id: string;
  xml: string;
  xml_sha256: string;
  created_at: Date;
}

/** The reference number of a series in a year: letters + last two digits of the year + E (electronic). */
export const seriesSymbol = (letters: string, year: number) => `${letters}-${String(year % 100).padStart(2, '0')}E`;

export function receiptJson(r: ReceiptRow, publicUrl: string) {
  return {
    id: r.id,
    object: 'receipt' as const,
    kind: r.kind,
    payment_id: r.payment_id,
    refund_id: r.refund_id,
    original_receipt_id: r.original_id,
    template_symbol: r.template_symbol,
    series_symbol: r.series_symbol,
    year: r.year,
    number: formatNumber(r.number),
    amount: vnd(r.amount),
    issued_at: new Date(r.issued_at).toISOString(),
    signing_time: r.signing_time,
    signing_cert_id: r.cert_id,
    lookup_code: r.lookup_code,
    lookup_url: `${publicUrl}/r/${r.lookup_code}`,
    xml_sha256: r.xml_sha256,
  };
}

export function seriesJson(s: SeriesRow) {
  return {
    id: s.id,
    object: 'receipt_series' as const,
    doc_type: s.doc_type,
    template_symbol: s.template_symbol,
    series_letters: s.series_letters,
    is_default: s.is_default,
    created_at: new Date(s.created_at).toISOString(),
  };
}

const LOOKUP_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
export function lookupCode(): string {
  return Array.from({ length: 12 }, () => LOOKUP_ALPHABET[crypto.randomInt(LOOKUP_ALPHABET.length)]).join('');
}

export async function createSeries(
  trx: Trx | Db,
  tenantId: string,
  s: { templateSymbol: string; seriesLetters: string; isDefault: boolean; docType?: DocType },
  now: Date,
): Promise<SeriesRow> {
  if (s.isDefault) await trx('receipt_series').where({ tenant_id: tenantId, is_default: true }).update({ is_default: false });
  const [row] = (await trx('receipt_series')
    .insert({
      tenant_id: tenantId,
      doc_type: s.docType ?? 'fee_receipt',
      template_symbol: s.templateSymbol,
      series_letters: s.seriesLetters,
      is_default: s.isDefault,
      created_at: now,
    })
    .returning('*')) as SeriesRow[];
  return row!;
}

/** The tenants' default series (one statement); development creates 01BLP0-001 / AA on first use. */
async function defaultSeries(trx: Trx, deps: Deps, tenantIds: readonly string[]): Promise<Map<string, SeriesRow>> {
  const found = async () =>
    new Map(
      (
        (await trx('receipt_series')
          .whereIn('tenant_id', [...tenantIds])
          .andWhere({ is_default: true })) as SeriesRow[]
      ).map((s) => [s.tenant_id, s]),
    );
  const byTenant = await found();
  const missing = tenantIds.filter((t) => !byTenant.has(t));
  if (missing.length === 0) return byTenant;
  if (deps.config.mode !== 'development') {
    throw new FeegateError(
      'FEEGATE_ERR_RECEIPT_SERIES_NOT_FOUND',
      'The unit has no default receipt series: create one (POST /v1/receipt_series) with its registered symbols',
    );
  }
  await trx.raw(
    `INSERT INTO receipt_series (tenant_id, doc_type, template_symbol, series_letters, is_default, created_at)
     SELECT t, 'fee_receipt', '01BLP0-001', 'AA', true, ? FROM unnest(?::uuid[]) AS t ON CONFLICT DO NOTHING`,
    [deps.clock.now(), missing],
  );
  return found();
}

/**
 * The next `count` numbers of each (series, year), locked until this transaction ends: one
 * statement for all, counters taken in key order (two batches never wait on each other in a
 * cycle). Returns the first number of each key's run.
 */
async function takeNumbers(trx: Trx, wanted: Map<string, { seriesId: string; year: number; count: number }>): Promise<Map<string, number>> {
  const { rows } = (await trx.raw(
    `INSERT INTO receipt_counters (series_id, year, last_number)
     SELECT series_id, year, count FROM jsonb_to_recordset(?::jsonb) AS x(series_id uuid, year int, count int) ORDER BY series_id, year
     ON CONFLICT (series_id, year) DO UPDATE SET last_number = receipt_counters.last_number + EXCLUDED.last_number
     RETURNING series_id, year, last_number`,
    [JSON.stringify([...wanted.values()].map((w) => ({ series_id: w.seriesId, year: w.year, count: w.count })))],
  )) as { rows: { series_id: string; year: number; last_number: number }[] };
  return new Map(
    rows.map((r) => {
      const key = `${r.series_id}/${r.year}`;
      return [key, r.last_number - wanted.get(key)!.count + 1];
    }),
  );
}

interface DocumentInput {
  tenant: Tenant;
  kind: ReceiptContent['kind'];
  paymentId: string;
  refundId?: string;
  /** When the money moved (the payment's or the refund's success): the receipt's date and year. */
  collectedAt: Date;
  original?: ReceiptRow;
  content: Omit<ReceiptContent, 'kind' | 'templateSymbol' | 'seriesSymbol' | 'number' | 'issueDate' | 'collector' | 'lookupCode'>;
  relatedNote?: string;
}

/**
 * Numbers, builds, signs and stores documents, and emits receipt.issued for each. The work per
 * statement does not grow with the count: one statement each for the series, the numbers, the
 * receipts and the events, so a batch of fifty costs about what one does, plus the signing.
 */
async function issueDocuments(trx: Trx, deps: Deps, inputs: readonly DocumentInput[]): Promise<ReceiptRow[]> {
  if (inputs.length === 0) return [];
  const { clock } = deps;
  const tenants = new Map(inputs.map((i) => [i.tenant.id, i.tenant]));
  const originalSeries = [...new Set(inputs.flatMap((i) => (i.original ? [i.original.series_id] : [])))];
  const seriesById = new Map(((originalSeries.length ? await trx('receipt_series').whereIn('id', originalSeries) : []) as SeriesRow[]).map((s) => [s.id, s]));
  const needDefault = [...new Set(inputs.filter((i) => !i.original).map((i) => i.tenant.id))];
  const defaults = needDefault.length ? await defaultSeries(trx, deps, needDefault) : new Map<string, SeriesRow>();
  const signers = new Map<string, Awaited<ReturnType<Deps['certs']['signer']>>>();
  for (const t of tenants.values()) signers.set(t.id, await deps.certs.signer(trx, t));

  const docs = inputs.map((input) => {
    const issueDate = vnDate(input.collectedAt);
    const year = Number(issueDate.slice(0, 4));
    const series = input.original ? seriesById.get(input.original.series_id)! : defaults.get(input.tenant.id)!;
    const content: ReceiptContent = {
      ...input.content,
      kind: input.kind,
      templateSymbol: series.template_symbol,
      seriesSymbol: seriesSymbol(series.series_letters, year),
      number: 0,
      issueDate,
      collector: { name: input.tenant.name, taxCode: input.tenant.tax_code, address: input.tenant.address, budgetCode: input.tenant.budget_code },
      lookupCode: lookupCode(),
      ...(input.original
        ? {
            related: {
              templateSymbol: input.original.template_symbol,
              seriesSymbol: input.original.series_symbol,
              number: input.original.number,
              issueDate: vnDate(new Date(input.original.issued_at)),
              note: input.relatedNote ?? '',
            },
          }
        : {}),
    };
    checkContent(content);
    return { input, series, content, year, key: `${series.id}/${year}` };
  });
  const wanted = new Map<string, { seriesId: string; year: number; count: number }>();
  for (const d of docs) {
    const w = wanted.get(d.key) ?? { seriesId: d.series.id, year: d.year, count: 0 };
    w.count++;
    wanted.set(d.key, w);
  }
  const next = await takeNumbers(trx, wanted);
  // Signed now, with the counters held: a later number never carries an earlier signing time.
  const now = clock.now();
  const signingTime = vnLocalTime(now);
  const rows = docs.map(({ input, series, content, year, key }) => {
    content.number = next.get(key)!;
    next.set(key, content.number + 1);
    const signer = signers.get(input.tenant.id)!;
    const built = TEMPLATES[series.doc_type].build(content);
    const xml = signDocument(built.xml, built, signer, signingTime);
    return {
      id: crypto.randomUUID(),
      tenant_id: input.tenant.id,
      series_id: series.id,
      kind: input.kind,
      payment_id: input.paymentId,
      refund_id: input.refundId ?? null,
      original_id: input.original?.id ?? null,
      template_symbol: content.templateSymbol,
      series_symbol: content.seriesSymbol,
      year,
      number: content.number,
      lookup_code: content.lookupCode,
      amount: content.total,
      issued_at: input.collectedAt,
      created_at: now,
      signing_time: signingTime,
      cert_id: signer.certId,
      xml,
      xml_sha256: crypto.createHash('sha256').update(xml, 'utf8').digest('hex'),
    };
  });
  const stored = new Map(((await trx('receipts').insert(rows).returning('*')) as ReceiptRow[]).map((r) => [r.id, r]));
  const out = rows.map((r) => stored.get(r.id)!);
  await emitEvents(
    trx,
    clock,
    out.map((r) => ({ tenantId: r.tenant_id, type: 'receipt.issued' as const, objectId: r.id, data: receiptJson(r, deps.config.publicUrl) })),
  );
  return out;
}

interface PaymentForReceipt {
  id: string;
  tenant_id: string;
  bill_id: string;
  reference: string;
  provider: string;
  amount: string | number;
  status: string;
  provider_txn_id: string | null;
  succeeded_at: Date | null;
}

function extraInfo(deps: Deps, p: PaymentForReceipt, bill: Record<string, unknown>): { field: string; value: string }[] {
  const pairs: [string, unknown][] = [
    ['Kênh thanh toán', deps.providers.get(p.provider)?.displayName ?? p.provider],
    ['Mã thanh toán', p.reference],
    ['Mã giao dịch nhà cung cấp', p.provider_txn_id],
    ['Mã hóa đơn của đơn vị', bill.external_ref],
    ['Mã hồ sơ', bill.dossier_code],
    ['Mã thủ tục', bill.procedure_code],
    ['Mã học sinh', bill.student_code],
    ['Năm học', bill.school_year],
    ['Học kỳ', bill.term],
  ];
  return pairs.filter(([, v]) => v !== null && v !== undefined && v !== '').map(([field, v]) => ({ field, value: String(v) }));
}

/**
 * The original receipts of succeeded payments, in the caller's transaction (idempotent: a payment
 * that has its receipt gets it back). One statement reads every payment with its bill and items.
 */
export async function issueForPayments(trx: Trx, deps: Deps, paymentIds: readonly string[]): Promise<ReceiptRow[]> {
  const ids = [...new Set(paymentIds)];
  const have = new Map(((await trx('receipts').whereIn('payment_id', ids).andWhere({ kind: 'original' })) as ReceiptRow[]).map((r) => [r.payment_id, r]));
  const todo = ids.filter((id) => !have.has(id));
  if (todo.length) {
    const { rows } = (await trx.raw(
      `SELECT p.id, p.tenant_id, p.bill_id, p.reference, p.provider, p.amount, p.status, p.provider_txn_id, p.succeeded_at, to_jsonb(b) AS bill,
              (SELECT coalesce(jsonb_agg(jsonb_build_object('name', i.name, 'amount', i.amount) ORDER BY i.position), '[]'::jsonb)
                 FROM bill_items i WHERE i.bill_id = p.bill_id) AS items
         FROM payments p JOIN bills b ON b.id = p.bill_id WHERE p.id = ANY(?::uuid[])`,
      [todo],
    )) as {
      rows: (PaymentForReceipt & {
        bill: Record<string, unknown> & { payer: { name: string; id_number?: string }; total_amount: number };
        items: { name: string; amount: number }[];
      })[];
    };
    const byId = new Map(rows.map((r) => [r.id, r]));
    const tenants = new Map(((await trx('tenants').whereIn('id', [...new Set(rows.map((r) => r.tenant_id))])) as Tenant[]).map((t) => [t.id, t]));
    const inputs = todo.map((id): DocumentInput => {
      const p = byId.get(id);
      if (!p) throw new Error(`payment ${id} not found: no receipt`);
      if (!['succeeded', 'partially_refunded', 'refunded'].includes(p.status)) throw new Error(`payment ${id} is ${p.status}: no receipt`);
      if (!p.succeeded_at) throw new Error(`payment ${id} has no success time: no receipt`);
      const { bill, items } = p;
      const amount = vnd(p.amount);
      const whole = amount === vnd(bill.total_amount);
      const lines = whole
        ? items.map((i) => ({ name: i.name, amount: vnd(i.amount) }))
        : [{ name: `Thanh toán một phần: ${items.map((i) => i.name).join('; ')}`.slice(0, 500), amount }];
      return {
        tenant: tenants.get(p.tenant_id)!,
        kind: 'original',
        paymentId: id,
        collectedAt: new Date(p.succeeded_at),
        content: {
          payer: { name: bill.payer.name, idNumber: bill.payer.id_number ?? null },
          lines,
          total: amount,
          paymentMethod: 'CK',
          extra: extraInfo(deps, p, bill),
        },
      };
    });
    for (const r of await issueDocuments(trx, deps, inputs)) have.set(r.payment_id, r);
  }
  return paymentIds.map((id) => have.get(id)!);
}

/** The original receipt of a succeeded payment, in the caller's transaction (idempotent). */
export async function issueForPayment(trx: Trx, deps: Deps, paymentId: string): Promise<ReceiptRow> {
  return (await issueForPayments(trx, deps, [paymentId]))[0]!;
}

/** The adjustment record of a succeeded refund, linked to the payment's original receipt. */
export async function issueForRefund(trx: Trx, deps: Deps, refundId: string): Promise<ReceiptRow | { waiting: string }> {
  const existing = (await trx('receipts').where({ refund_id: refundId }).first()) as ReceiptRow | undefined;
  if (existing) return existing;
  const r = (await trx('refunds').where({ id: refundId }).first()) as {
    id: string;
    payment_id: string;
    amount: string | number;
    status: string;
    reason: string;
    updated_at: Date;
  };
  if (r.status !== 'succeeded') throw new Error(`refund ${refundId} is ${r.status}: no adjustment`);
  const original = (await trx('receipts').where({ payment_id: r.payment_id, kind: 'original' }).first()) as ReceiptRow | undefined;
  if (!original) return { waiting: 'the original receipt is not issued yet' };
  const p = (await trx('payments').where({ id: r.payment_id }).first()) as PaymentForReceipt;
  const bill = (await trx('bills').where({ id: p.bill_id }).first()) as Record<string, unknown> & { payer: { name: string; id_number?: string } };
  const tenant = (await trx('tenants').where({ id: p.tenant_id }).first()) as Tenant;
  const amount = vnd(r.amount);
  const ref = `${original.template_symbol} ${original.series_symbol} số ${formatNumber(original.number)}`;
  const [row] = await issueDocuments(trx, deps, [
    {
      // A succeeded refund is final: its row last changed when it succeeded.
      tenant,
      kind: 'adjustment',
      paymentId: p.id,
      refundId: r.id,
      original,
      collectedAt: new Date(r.updated_at),
      relatedNote: `Điều chỉnh giảm ${amount} đồng do hoàn tiền${r.reason ? `: ${r.reason}` : ''}`.slice(0, 255),
      content: {
        payer: { name: bill.payer.name, idNumber: bill.payer.id_number ?? null },
        lines: [{ name: `Hoàn trả, điều chỉnh giảm biên lai ${ref}`, amount }],
        total: amount,
        paymentMethod: 'CK',
        extra: extraInfo(deps, p, bill),
      },
    },
  ]);
  return row!;
}

async function runOne(trx: Trx, deps: Deps, row: OutboxRow): Promise<string | null> {
  if (row.kind === ISSUE) {
    await issueForPayment(trx, deps, String(row.payload.payment_id));
    return null;
  }
  const r = await issueForRefund(trx, deps, String(row.payload.refund_id));
  return 'waiting' in r ? r.waiting : null;
}

function receiptHandler(kind: string): OutboxHandler {
  return {
    kind,
    backoffSeconds: [5, 30, 60, 300, 900, 3600, 3600, 3600, 3600, 3600, 21600, 21600, 86400],
    async run(row, deps) {
      let waiting: string | null = null;
      await deps.db.transaction(async (trx) => {
        waiting = await runOne(trx, deps, row);
        if (!waiting) await completeRow(trx, deps.clock, row);
      });
      if (waiting) return { retry: waiting };
      deps.metrics.receiptsIssued.inc({ kind: row.kind === ISSUE ? 'original' : 'adjustment' });
      return { completed: true };
    },
    /**
     * Many at once, in one transaction: original receipts are issued together (one statement per
     * step for the whole batch, the counters locked once); adjustments one after the other. Any
     * failure rolls the batch back and the rows run one by one.
     */
    async runBatch(rows, deps) {
      await deps.db.transaction(async (trx) => {
        if (kind === ISSUE) {
          await issueForPayments(
            trx,
            deps,
            rows.map((r) => String(r.payload.payment_id)),
          );
        } else {
          for (const row of rows) {
            if (await runOne(trx, deps, row)) throw new Error('an adjustment waits for its original');
          }
        }
        await completeRows(trx, deps.clock, rows);
      });
      deps.metrics.receiptsIssued.inc({ kind: kind === ISSUE ? 'original' : 'adjustment' }, rows.length);
    },
  };
}

export const receiptHandlers = [receiptHandler(ISSUE), receiptHandler(ADJUST)];
