/**
 * Creating and reading payments. A payment is created for a bill and a provider: our reference
 * is allocated and stored first (so a status query can always find the order later), with the
 * create request (provider-requests.ts), then the provider is asked for a checkout outside any
 * transaction, once, then the outcome is applied through
 * the transition function. A timeout there leaves the payment `unknown`, never failed.
 */
import crypto from 'node:crypto';
import type { Trx } from '../db/knex.js';
import { prepared } from '../db/prepared.js';
import { Batcher } from '../db/batcher.js';
import type { Deps } from '../deps.js';
import { endOfVnDay } from '../clock.js';
import { appendAudit, auditRow } from '../audit/audit-log.js';
import { FeegateError, fail, isUniqueViolation } from '../errors.js';
import { vnd } from '../money.js';
import { claimIdempotency, completeIdempotency, idempotencyCompletion, setRecoveryPoint, type IdemContext } from '../http/idempotency.js';
import { dateOnly, notPayableReason, type BillRow } from '../bills/bills.js';
import type { ApiKeyPrincipal } from '../tenants/api-keys.js';
import type { AdapterContext, CheckoutRequest, CheckoutResult, Outcome, PaymentAdapter, StatusResult } from '../../adapters/contract.js';
import { checkoutRequestId, checkoutRequestOf, markSent, prepareRequest, recordAnswer, type ProviderRequestRow } from './provider-requests.js';
import { paymentJson, type PaymentJson, type PaymentRow, type PaymentStatus } from './model.js';
import { transitionPayment, type TransitionChange, type TransitionResult, type TransitionSource } from './transition.js';

export interface PaymentInput {
  bill_id: string;
  provider: string;
  amount?: number;
  return_url?: string;
}

/** When the janitor first asks the provider about a new payment: the provider's own delay, or the schedule's first. */
const firstCheck = (deps: Deps, now: Date, adapter?: PaymentAdapter) =>
  new Date(now.getTime() + (adapter?.firstStatusCheckSeconds ?? deps.config.janitorScheduleSeconds[0] ?? 60) * 1000);

export function newReference(): string {
  return `FG${crypto.randomBytes(10).toString('hex').toUpperCase()}`;
}

export function adapterFor(deps: Deps, provider: string): PaymentAdapter {
  const adapter = deps.providers.get(provider);
  if (!adapter || (adapter.sandbox && !deps.config.sandbox)) {
    fail('FEEGATE_ERR_PROVIDER_UNKNOWN', `Provider "${provider}" is not enabled`, {
      enabled: deps.providers
        .list()
        .filter((a) => !a.sandbox || deps.config.sandbox)
        .map((a) => a.id),
    });
  }
  return adapter;
}

/** The adapter, if this unit can take payments with it: sandbox providers in sandbox mode, others with credentials. */
async function adapterForUnit(deps: Deps, provider: string, tenantId: string): Promise<PaymentAdapter> {
  const adapter = adapterFor(deps, provider);
  if (!adapter.sandbox && Object.keys((await deps.providers.context(provider, tenantId)).credentials).length === 0) {
    fail('FEEGATE_ERR_PROVIDER_UNKNOWN', `Provider "${provider}" has no credentials for this unit: set them with POST /v1/provider-credentials/${provider}`);
  }
  return adapter;
}

const actorOf = (who: ApiKeyPrincipal) => `api_key:${who.keyId}`;

interface PayableBill {
  bill: BillRow;
  amount: number;
  expiresAt: Date;
  description: string;
}

/**
 * Reads (and with `lock`, locks) the bill and checks it can take this payment, in one statement:
 * it exists for this tenant, is payable today, has no payment in flight (under the lock this check
 * cannot race; the partial unique index backs it up), and the amount fits.
 */
type BillWithInFlight = BillRow & { in_flight: { id: string; status: string } | null };
/**
 * The in-flight check reads this bill's payments only: its condition is that of the per-bill
 * unique index payments_one_in_flight_per_bill, and no other index shares it (the janitor's
 * payments_due also requires next_check_at, migration 0014), so the planner cannot answer it by
 * scanning every payment in flight (test/query-plans.test.ts).
 */
export const BILL_COLUMNS = `b.*, (SELECT json_build_object('id', p.id, 'status', p.status) FROM payments p
                  WHERE p.bill_id = b.id AND p.status IN ('created', 'pending', 'unknown') LIMIT 1) AS in_flight`;

const snapshotReaders = new WeakMap<object, Batcher<string, BillWithInFlight | undefined>>();

/** Unlocked bill reads waiting together share one statement. */
function billSnapshots(db: Deps['db']): Batcher<string, BillWithInFlight | undefined> {
  let b = snapshotReaders.get(db);
  if (!b) {
    b = new Batcher(async (ids) => {
      const { rows } = (await prepared(db, `SELECT ${BILL_COLUMNS} FROM bills b WHERE b.id = ANY(?::uuid[])`, [`{${ids.join(',')}}`])) as {
        rows: BillWithInFlight[];
      };
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id));
    });
    snapshotReaders.set(db, b);
  }
  return b;
}

async function payableBill(
  q: Trx | Deps['db'],
  deps: Deps,
  adapter: PaymentAdapter,
  who: ApiKeyPrincipal,
  input: PaymentInput,
  lock: boolean,
): Promise<PayableBill> {
  let bill: BillWithInFlight | undefined;
  if (lock) {
    const { rows } = (await prepared(q, `SELECT ${BILL_COLUMNS} FROM bills b WHERE b.id = ? AND b.tenant_id = ? FOR UPDATE OF b`, [
      input.bill_id,
      who.tenantId,
    ])) as {
      rows: BillWithInFlight[];
    };
    bill = rows[0];
  } else {
    bill = await billSnapshots(q as Deps['db']).submit(input.bill_id);
    if (bill && bill.tenant_id !== who.tenantId) bill = undefined; // another tenant's bill does not exist for this key
  }
  if (!bill) fail('FEEGATE_ERR_BILL_NOT_FOUND');
  const now = deps.clock.now();
  const reason = notPayableReason(bill, now);
  if (reason) fail('FEEGATE_ERR_BILL_NOT_PAYABLE', `The bill cannot be paid: ${reason}`, { bill_status: bill.status });
  if (bill.in_flight) throw new FeegateError('FEEGATE_ERR_PAYMENT_IN_PROGRESS', undefined, { payment_id: bill.in_flight.id, status: bill.in_flight.status });
  const due = vnd(bill.total_amount) - vnd(bill.amount_paid);
  const amount = input.amount ?? due;
  if (amount !== due && !(bill.allow_partial && amount <= due)) {
    fail('FEEGATE_ERR_PAYMENT_AMOUNT_INVALID', bill.allow_partial ? `The amount must be at most ${due}` : `The amount must be ${due}`, { amount_due: due });
  }
  // Refused here, before anything exists at the provider: above its ceiling an amount could not travel exactly.
  if (amount > adapter.maxAmount) {
    fail('FEEGATE_ERR_PAYMENT_ABOVE_PROVIDER_MAX', `${adapter.displayName} takes payments of at most ${adapter.maxAmount} VND`, {
      max_amount: adapter.maxAmount,
      amount,
    });
  }
  let expiresAt = new Date(now.getTime() + deps.config.checkoutTtlSeconds * 1000);
  const dueDate = dateOnly(bill.due_date);
  if (dueDate && endOfVnDay(dueDate) < expiresAt) expiresAt = endOfVnDay(dueDate);
  return { bill, amount, expiresAt, description: bill.description || bill.external_ref };
}

function inFlightViolation(err: unknown): never {
  if (isUniqueViolation(err, 'payments_one_in_flight_per_bill')) throw new FeegateError('FEEGATE_ERR_PAYMENT_IN_PROGRESS');
  throw err;
}

export async function createPayment(deps: Deps, who: ApiKeyPrincipal, input: PaymentInput, idem?: IdemContext, clientIp?: string): Promise<PaymentJson> {
  const adapter = await adapterForUnit(deps, input.provider, who.tenantId);
  return adapter.checkoutFlow === 'local'
    ? createWithLocalCheckout(deps, adapter, who, input, idem, clientIp)
    : createWithRemoteCheckout(deps, adapter, who, input, idem, clientIp);
}

/**
 * A checkout we sign ourselves. Nothing exists at the provider before the payer follows the URL,
 * and they only get it after our commit, so the payment, its checkout, its audit record and the
 * idempotent response are written together.
 *
 * Fast path: read the bill, decide and sign in memory, then hand the rows to the insert batcher:
 * ONE atomic statement (for all the payments waiting at that moment) locks each bill again on the
 * state we decided from (status, amount paid) and inserts the payments, their audit records and
 * their completed Idempotency-Keys. A payment whose bill moved in between is not inserted; a
 * conflict (another payment, a used key) fails the statement and writes nothing. Either way that
 * request then takes the careful path below, which gives the precise answer.
 */
async function createWithLocalCheckout(
  deps: Deps,
  adapter: PaymentAdapter,
  who: ApiKeyPrincipal,
  input: PaymentInput,
  idem?: IdemContext,
  clientIp?: string,
): Promise<PaymentJson> {
  const { db } = deps;
  const ctx = await deps.providers.context(adapter.id, who.tenantId);
  let snap: PayableBill;
  try {
    snap = await payableBill(db, deps, adapter, who, input, false);
  } catch (err) {
    // With a key, a refusal may really be a retry of a request that succeeded: let the key answer.
    if (idem && err instanceof FeegateError) return createLocalCarefully(deps, adapter, ctx, who, input, idem, clientIp);
    throw err;
  }
  const { row, json, audit } = await localPayment(deps, adapter, ctx, who, input, snap, clientIp);
  const inserted = await insertBatcher(db).submit({
    bill_id: snap.bill.id,
    tenant_id: who.tenantId,
    bill_status: snap.bill.status,
    bill_paid: vnd(snap.bill.amount_paid),
    id: row.id,
    reference: row.reference,
    provider: row.provider,
    amount: vnd(row.amount),
    status: row.status,
    provider_txn_id: row.provider_txn_id,
    checkout: row.checkout,
    return_url: row.return_url,
    failure_code: row.failure_code,
    failure_message: row.failure_message,
    expires_at: row.expires_at,
    next_check_at: row.next_check_at,
    created_at: row.created_at,
    actor: audit.actor,
    audit_data: JSON.parse(audit.data) as unknown,
    idem_key: idem?.key ?? null,
    idem_method: idem?.method ?? null,
    idem_path: idem?.path ?? null,
    idem_fingerprint: idem?.fingerprint ?? null,
    response: JSON.stringify(json), // stored as sent: replayed byte for byte
  });
  if (inserted) {
    if (idem) idem.completed = true;
    return json;
  }
  return createLocalCarefully(deps, adapter, ctx, who, input, idem, clientIp);
}

const INSERT_PAYMENTS = `
  WITH x AS (SELECT * FROM jsonb_to_recordset(?::jsonb) AS x(
         bill_id uuid, tenant_id uuid, bill_status text, bill_paid bigint, id uuid, reference text, provider text, amount bigint,
         status text, provider_txn_id text, checkout jsonb, return_url text, failure_code text, failure_message text,
         expires_at timestamptz, next_check_at timestamptz, created_at timestamptz, actor text, audit_data jsonb,
         idem_key text, idem_method text, idem_path text, idem_fingerprint text, response text)),
    b AS (SELECT bills.id FROM bills JOIN x ON bills.id = x.bill_id AND bills.tenant_id = x.tenant_id
            AND bills.status = x.bill_status AND bills.amount_paid = x.bill_paid FOR UPDATE OF bills),
    p AS (INSERT INTO payments (id, tenant_id, bill_id, reference, provider, amount, status, provider_txn_id, checkout, return_url,
                                failure_code, failure_message, expires_at, next_check_at, created_at, updated_at)
          SELECT x.id, x.tenant_id, x.bill_id, x.reference, x.provider, x.amount, x.status, x.provider_txn_id, x.checkout, x.return_url,
                 x.failure_code, x.failure_message, x.expires_at, x.next_check_at, x.created_at, x.created_at
            FROM x JOIN b ON b.id = x.bill_id RETURNING id),
    a AS (INSERT INTO audit_log (tenant_id, actor, action, entity_type, entity_id, data, created_at)
          SELECT x.tenant_id, x.actor, 'payment.created', 'payment', x.id::text, x.audit_data, x.created_at FROM x JOIN p ON p.id = x.id),
    k AS (INSERT INTO idempotency_keys (tenant_id, key, method, path, fingerprint, status, response_status, response_body, created_at)
          SELECT x.tenant_id, x.idem_key, x.idem_method, x.idem_path, x.idem_fingerprint, 'done', 201, x.response, x.created_at
            FROM x JOIN p ON p.id = x.id WHERE x.idem_key IS NOT NULL)
  SELECT id FROM p`;

const batchers = new WeakMap<object, Batcher<Record<string, unknown>, boolean>>();

/** Payments waiting to be inserted share one statement (and one commit). */
function insertBatcher(db: Deps['db']): Batcher<Record<string, unknown>, boolean> {
  let b = batchers.get(db);
  if (!b) {
    b = new Batcher(async (items) => {
      try {
        const { rows } = (await prepared(db, INSERT_PAYMENTS, [JSON.stringify(items)])) as { rows: { id: string }[] };
        const ids = new Set(rows.map((r) => r.id));
        return items.map((i) => ids.has(i.id as string));
      } catch (err) {
        if (isUniqueViolation(err)) return items.map(() => false); // nothing written: each goes the careful way
        throw err;
      }
    });
    batchers.set(db, b);
  }
  return b;
}

/** The careful path: claim, lock, decide, write, in one transaction; precise errors. */
async function createLocalCarefully(
  deps: Deps,
  adapter: PaymentAdapter,
  ctx: AdapterContext,
  who: ApiKeyPrincipal,
  input: PaymentInput,
  idem?: IdemContext,
  clientIp?: string,
): Promise<PaymentJson> {
  const { db, clock, config } = deps;
  return db.transaction(async (trx) => {
    await claimIdempotency(trx, clock, idem, config.idempotencyLockSeconds);
    const bill = await payableBill(trx, deps, adapter, who, input, true);
    const { row, json, audit } = await localPayment(deps, adapter, ctx, who, input, bill, clientIp);
    const ins = trx('payments')
      .insert({ ...row, checkout: row.checkout ? JSON.stringify(row.checkout) : null })
      .toSQL();
    const a = trx('audit_log').insert(audit).toSQL();
    const done = idempotencyCompletion(idem, 201, json);
    const ctes = [`p AS (${ins.sql} RETURNING id)`, `a AS (${a.sql})`, ...(done ? [`k AS (${done.sql})`] : [])];
    try {
      await trx.raw(`WITH ${ctes.join(', ')} SELECT id FROM p`, [...ins.bindings, ...a.bindings, ...(done?.bindings ?? [])]);
    } catch (err) {
      inFlightViolation(err);
    }
    if (idem) idem.completed = true;
    return json;
  });
}

/** The payment row, its API form and its audit record, for a checkout the adapter signs locally. */
async function localPayment(
  deps: Deps,
  adapter: PaymentAdapter,
  ctx: AdapterContext,
  who: ApiKeyPrincipal,
  input: PaymentInput,
  bill: PayableBill,
  clientIp?: string,
) {
  const now = deps.clock.now();
  const reference = newReference();
  // Local by contract: signing a URL, no I/O.
  const result = await adapter.createCheckout(ctx, checkoutRequest(deps, adapter, reference, bill.amount, now, bill.expiresAt, bill.description, clientIp));
  deps.metrics.providerCalls.inc({ provider: adapter.id, operation: 'create_checkout', outcome: result.outcome });
  const row: PaymentRow = {
    id: crypto.randomUUID(),
    tenant_id: who.tenantId,
    bill_id: bill.bill.id,
    reference,
    provider: adapter.id,
    amount: bill.amount,
    currency: 'VND',
    status: result.outcome === 'pending' ? 'pending' : result.outcome === 'failed' ? 'failed' : 'unknown',
    amount_refunded: 0,
    provider_txn_id: result.outcome === 'pending' ? (result.providerTxnId ?? null) : null,
    checkout: result.outcome === 'pending' ? result.checkout : null,
    return_url: input.return_url ?? null,
    failure_code: result.outcome === 'failed' ? result.code : result.outcome === 'unknown' ? 'provider_unknown' : null,
    failure_message: result.outcome === 'pending' ? null : result.message,
    expires_at: bill.expiresAt,
    next_check_at: firstCheck(deps, now, adapter),
    check_count: 0,
    created_at: now,
    updated_at: now,
    succeeded_at: null,
  };
  const audit = auditRow(deps.clock, {
    tenantId: who.tenantId,
    actor: actorOf(who),
    action: 'payment.created',
    entityType: 'payment',
    entityId: row.id,
    data: { bill_id: bill.bill.id, provider: adapter.id, amount: bill.amount, reference, status: row.status },
  });
  return { row, json: paymentJson(row), audit };
}

/**
 * A checkout the provider creates: store the payment and its create request first (our reference
 * exists before the provider hears of it), commit the request `sent`, call the provider outside any
 * transaction, apply its answer through the transition function. A crash in between is resumed by
 * a retry with the same Idempotency-Key: a request that may have reached the provider is asked
 * about (status query), never sent again; the janitor's status query settles it otherwise.
 */
async function createWithRemoteCheckout(
  deps: Deps,
  adapter: PaymentAdapter,
  who: ApiKeyPrincipal,
  input: PaymentInput,
  idem?: IdemContext,
  clientIp?: string,
): Promise<PaymentJson> {
  const { db, clock, config } = deps;
  const { payment, description, request } = await db.transaction(async (trx) => {
    const recovery = await claimIdempotency(trx, clock, idem, config.idempotencyLockSeconds);
    const recoverId = recovery?.payment_id as string | undefined;
    if (recoverId) {
      const p = (await trx('payments').where({ id: recoverId, tenant_id: who.tenantId }).first()) as PaymentRow;
      const bill = (await trx('bills').where({ id: p.bill_id }).first()) as BillRow;
      return { payment: p, description: bill.description || bill.external_ref, request: await checkoutRequestOf(trx, p.id) };
    }
    const { bill, amount, expiresAt, description } = await payableBill(trx, deps, adapter, who, input, true);
    const now = clock.now();
    let p: PaymentRow;
    try {
      [p] = (await trx('payments')
        .insert({
          tenant_id: who.tenantId,
          bill_id: bill.id,
          reference: newReference(),
          provider: adapter.id,
          amount,
          status: 'created',
          return_url: input.return_url ?? null,
          expires_at: expiresAt,
          next_check_at: firstCheck(deps, now, adapter),
          created_at: now,
          updated_at: now,
        })
        .returning('*')) as [PaymentRow];
    } catch (err) {
      inFlightViolation(err);
    }
    const request = await prepareRequest(trx, clock, {
      tenantId: who.tenantId,
      provider: adapter.id,
      kind: 'checkout_create',
      requestId: checkoutRequestId(p.reference),
      paymentId: p.id,
    });
    await appendAudit(trx, clock, {
      tenantId: who.tenantId,
      actor: actorOf(who),
      action: 'payment.created',
      entityType: 'payment',
      entityId: p.id,
      data: { bill_id: bill.id, provider: adapter.id, amount, reference: p.reference, status: 'created' },
    });
    await setRecoveryPoint(trx, idem, { payment_id: p.id });
    return { payment: p, description, request };
  });

  let current = payment;
  // Ours to send, once: the request is committed `sent` before the provider hears of it.
  const mine = payment.status === 'created' && request?.state === 'prepared' && (await markSent(db, clock, request.id));
  if (mine) {
    const result = await askForCheckout(deps, adapter, payment, description, clientIp);
    current = await db.transaction(async (trx) => {
      const r = await applyCheckoutResult(trx, deps, payment.id, result, actorOf(who));
      await recordAnswer(trx, clock, request.id, {
        outcome: result.outcome,
        code: 'code' in result ? result.code : undefined,
        message: 'message' in result ? result.message : undefined,
        providerId: result.outcome === 'pending' ? result.providerTxnId : undefined,
        source: 'call',
      });
      await completeIdempotency(trx, clock, idem, 201, paymentJson(r.payment));
      return r.payment;
    });
  } else if (payment.status === 'created') {
    current = await resumeSentCheckout(deps, payment, request, actorOf(who), idem);
  } else {
    await completeIdempotency(db, clock, idem, 201, paymentJson(current));
  }
  return paymentJson(current);
}

/**
 * A remote checkout resumed after a crash whose create may have reached the provider: the provider
 * is asked (status query), never asked to create again, and its word is booked:
 * - a final word (paid, failed, cancelled) is applied;
 * - an order it holds unpaid, or one it does not know: the checkout answer (the pay URL) died with
 *   the process before anyone saw it, so nobody can pay it through us: the payment fails
 *   (`checkout_lost` / `checkout_not_created`) and the bill can take a new one. Should the order be
 *   paid anyway, its callback is still believed (a late success, credited);
 * - no answer: `unknown`, for the janitor's status checks.
 */
async function resumeSentCheckout(deps: Deps, p: PaymentRow, request: ProviderRequestRow | undefined, actor: string, idem?: IdemContext): Promise<PaymentRow> {
  const { db, clock } = deps;
  const result: StatusResult = await askProvider(deps, p.provider, p.tenant_id, 'query', (adapter, ctx) =>
    adapter.queryStatus(ctx, { reference: p.reference, providerTxnId: p.provider_txn_id, amount: vnd(p.amount), createdAt: p.created_at }),
  );
  const amountOk = result.amount === undefined || result.amount === vnd(p.amount);
  const final = (result.outcome === 'succeeded' || result.outcome === 'failed' || result.outcome === 'cancelled') && amountOk;
  const lost = !final && amountOk && (result.notFound || result.outcome === 'pending');
  return db.transaction(async (trx) => {
    let r: TransitionResult | null;
    if (final) {
      r = await applyProviderOutcome(trx, deps, p.id, result.outcome, {
        source: 'query',
        actor,
        providerTxnId: result.providerTxnId,
        code: result.code,
        message: result.message,
      });
    } else if (lost) {
      r = await transitionPayment(trx, clock, p.id, {
        to: 'failed',
        source: 'api',
        actor,
        failure: result.notFound
          ? { code: 'checkout_not_created', message: 'the create request never reached the provider (it has no such order)' }
          : { code: 'checkout_lost', message: 'the provider holds the order, but its checkout answer was lost before anyone saw it' },
      });
    } else {
      r = await transitionPayment(trx, clock, p.id, {
        to: 'unknown',
        source: 'api',
        actor,
        nextCheckAt: firstCheck(deps, clock.now()),
        failure: { code: 'provider_unknown', message: result.message ?? 'the provider did not say' },
      });
    }
    await recordAnswer(trx, clock, request?.id, {
      outcome: final ? result.outcome : lost ? (result.notFound ? 'not_found' : 'pending') : 'unknown',
      code: result.code,
      message: result.message,
      providerId: result.providerTxnId,
      source: 'query',
    });
    const row = r?.payment ?? ((await trx('payments').where({ id: p.id }).first()) as PaymentRow);
    await completeIdempotency(trx, clock, idem, 201, paymentJson(row));
    return row;
  });
}

function checkoutRequest(
  deps: Deps,
  adapter: PaymentAdapter,
  reference: string,
  amount: number,
  createdAt: Date,
  expiresAt: Date,
  description: string,
  clientIp?: string,
): CheckoutRequest {
  const base = deps.config.publicUrl;
  return {
    reference,
    amount,
    currency: 'VND',
    description,
    returnUrl: `${base}/v1/return/${adapter.id}`,
    notifyUrl: `${base}/v1/notify/${adapter.id}`,
    createdAt,
    expiresAt,
    clientIp,
  };
}

/** The bill behind a payment, as CheckoutRequest.details: its items, or one line for a partial payment. */
async function checkoutDetails(deps: Deps, p: PaymentRow, description: string): Promise<NonNullable<CheckoutRequest['details']>> {
  const bill = (await deps.db('bills').where({ id: p.bill_id }).first('dossier_code', 'procedure_code', 'payer', 'total_amount')) as {
    dossier_code: string | null;
    procedure_code: string | null;
    payer: { name: string };
    total_amount: string | number;
  };
  const items = (await deps.db('bill_items').where({ bill_id: p.bill_id }).orderBy('position').select('fee_code', 'name', 'amount')) as {
    fee_code: string;
    name: string;
    amount: string | number;
  }[];
  const whole = vnd(bill.total_amount) === vnd(p.amount);
  return {
    dossierCode: bill.dossier_code,
    procedureCode: bill.procedure_code,
    payerName: bill.payer.name,
    items: whole
      ? items.map((i) => ({ code: i.fee_code, name: i.name, amount: vnd(i.amount) }))
      : [{ code: 'PARTIAL', name: description, amount: vnd(p.amount) }],
  };
}

function askForCheckout(deps: Deps, adapter: PaymentAdapter, p: PaymentRow, description: string, clientIp?: string): Promise<CheckoutResult> {
  return askProvider(deps, adapter.id, p.tenant_id, 'create_checkout', async (a, ctx) =>
    a.createCheckout(ctx, {
      ...checkoutRequest(deps, a, p.reference, vnd(p.amount), new Date(p.created_at), new Date(p.expires_at), description, clientIp),
      details: await checkoutDetails(deps, p, description),
    }),
  );
}

async function applyCheckoutResult(trx: Trx, deps: Deps, paymentId: string, result: CheckoutResult, actor: string): Promise<TransitionResult> {
  const now = deps.clock.now();
  switch (result.outcome) {
    case 'pending':
      return transitionPayment(trx, deps.clock, paymentId, {
        to: 'pending',
        source: 'api',
        actor,
        checkout: result.checkout,
        providerTxnId: result.providerTxnId ?? null,
      });
    case 'failed':
      return transitionPayment(trx, deps.clock, paymentId, {
        to: 'failed',
        source: 'api',
        actor,
        failure: { code: result.code, message: result.message },
      });
    default:
      return transitionPayment(trx, deps.clock, paymentId, {
        to: 'unknown',
        source: 'api',
        actor,
        failure: { code: 'provider_unknown', message: result.message },
        nextCheckAt: firstCheck(deps, now),
      });
  }
}

/** Maps a provider outcome to the state it asks for; `unknown` asks for nothing. */
export function statusForOutcome(outcome: Outcome): PaymentStatus | null {
  switch (outcome) {
    case 'succeeded':
      return 'succeeded';
    case 'failed':
      return 'failed';
    case 'cancelled':
      return 'cancelled';
    case 'pending':
      return 'pending';
    default:
      return null;
  }
}

/** Who reported a provider's word about a payment, and what it said beside the outcome. */
export interface ProviderWord {
  source: TransitionSource;
  actor: string;
  providerTxnId?: string;
  code?: string;
  message?: string;
}

/** The move a provider's word asks for (null when the outcome moves nothing). */
export function providerChange(outcome: Outcome, word: ProviderWord): TransitionChange | null {
  const to = statusForOutcome(outcome);
  if (!to) return null;
  return {
    to,
    source: word.source,
    actor: word.actor,
    providerTxnId: word.providerTxnId ?? null,
    failure: to === 'failed' || to === 'cancelled' ? { code: word.code ?? to, message: word.message ?? `provider reported ${to}` } : undefined,
  };
}

/** Applies what the provider said (callback or query) through the transition function. */
export async function applyProviderOutcome(
  trx: Trx,
  deps: Deps,
  payment: string | PaymentRow,
  outcome: Outcome,
  word: ProviderWord,
): Promise<TransitionResult | null> {
  const change = providerChange(outcome, word);
  return change ? transitionPayment(trx, deps.clock, payment, change) : null;
}

/** States that close a payment without money; a success reported after them needs the provider's query. */
export const CLOSED_STATES: readonly PaymentStatus[] = ['failed', 'cancelled', 'expired'];

/**
 * A callback reported success for a payment already closed (failed, cancelled or expired). Late
 * money is real and is booked, but only on the provider's answer to our own status query, never
 * on the callback alone: a callback is only as good as its framing (issue 10: a re-split cancel
 * read as a success), a query is our request to the provider. `succeeded`: confirmed and booked;
 * `refused`: the provider says otherwise (or another amount); `unknown`: it could not say (the
 * provider's retry of the callback asks again).
 */
export async function confirmLateSuccess(deps: Deps, payment: PaymentRow, actor: string): Promise<'succeeded' | 'refused' | 'unknown'> {
  const result: StatusResult = await askProvider(deps, payment.provider, payment.tenant_id, 'query', (a, ctx) =>
    a.queryStatus(ctx, { reference: payment.reference, providerTxnId: payment.provider_txn_id, amount: vnd(payment.amount), createdAt: payment.created_at }),
  );
  if (result.outcome === 'unknown' || result.outcome === 'pending') return 'unknown';
  if (result.outcome !== 'succeeded' || result.amount !== vnd(payment.amount)) return 'refused';
  return deps.db.transaction(async (trx) => {
    const r = await applyProviderOutcome(trx, deps, payment.id, 'succeeded', {
      source: 'query',
      actor,
      providerTxnId: result.providerTxnId,
      code: result.code,
    });
    return r?.payment.status === 'succeeded' ? 'succeeded' : 'refused';
  });
}

/**
 * Asks a provider something with the unit's credentials, outside any transaction, and counts the
 * call (`feegate_provider_calls_total`). A provider that is not enabled, or an adapter that throws
 * or times out, has not told us what happened there: the answer is `unknown`, never a failure.
 */
export async function askProvider<T extends { outcome: string; message?: string }>(
  deps: Deps,
  provider: string,
  tenantId: string,
  operation: string,
  ask: (adapter: PaymentAdapter, ctx: AdapterContext) => Promise<T>,
): Promise<T | { outcome: 'unknown'; message: string }> {
  const adapter = deps.providers.get(provider);
  let result: T | { outcome: 'unknown'; message: string };
  if (!adapter) {
    result = { outcome: 'unknown', message: `provider ${provider} is not enabled` };
  } else {
    try {
      result = await ask(adapter, await deps.providers.context(adapter.id, tenantId));
    } catch (err) {
      result = { outcome: 'unknown', message: `adapter error: ${(err as Error).message}` };
    }
  }
  deps.metrics.providerCalls.inc({ provider, operation, outcome: result.outcome });
  return result;
}

export async function getPayment(deps: Deps, tenantId: string, id: string): Promise<PaymentRow> {
  const p = (await deps.db('payments').where({ id, tenant_id: tenantId }).first()) as PaymentRow | undefined;
  if (!p) fail('FEEGATE_ERR_PAYMENT_NOT_FOUND');
  return p;
}
