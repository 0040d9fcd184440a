/**
 * The audit log: append-only (enforced by triggers), hash-chained per tenant.
 *
 * A record is written in the same transaction as the change it describes (appendAudit). The chain
 * is then extended by a sealer (sealAudit) that, holding the tenant's chain head row locked, gives
 * each new record the next sequence number and row_hash = sha256(prev_hash || canonical row), with
 * the canonical row in RFC 8785 JSON. Sealing after commit, instead of inside every business
 * transaction, keeps the per-tenant chain head out of the hot path: payments of one tenant do not
 * queue behind one lock. A record is unsealed only until the next sealer pass (about a second).
 */
import crypto from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditInput {
  tenantId: string;
  actor: string;
  action: string;
  entityType: string;
  entityId: string;
  data?: Record<string, unknown>;
}

/** The row appendAudit writes (also used by statements that insert it themselves). */
export function auditRow(clock: Clock, rec: AuditInput) {
  return {
    tenant_id: rec.tenantId,
    actor: rec.actor,
    action: rec.action,
    entity_type: rec.entityType,
    entity_id: rec.entityId,
    data: JSON.stringify(rec.data ?? {}),
    created_at: clock.now(),
  };
}

export async function appendAudit(trx: Trx, clock: Clock, rec: AuditInput): Promise<void> {
  await trx('audit_log').insert(auditRow(clock, rec));
}

interface AuditRow {
  id: string | number;
  tenant_id: string;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string;
  data: Record<string, unknown>;
  created_at: Date;
  seq: string | number | null;
  prev_hash: string | null;
  row_hash: string | null;
}

/** The bytes that are hashed for one record: RFC 8785 canonical JSON of its content and position. */
export function canonicalRecord(row: AuditRow, seq: number): string {
  const text = canonicalize({
    seq,
    id: Number(row.id),
    tenant_id: row.tenant_id,
    actor: row.actor,
    action: row.action,
    entity_type: row.entity_type,
    entity_id: row.entity_id,
    data: row.data,
    created_at: new Date(row.created_at).toISOString(),
  });
  if (text === undefined) throw new Error('audit record cannot be canonicalised');
  return text;
}

export function chainHash(prevHash: string, canonical: string): string {
  return crypto.createHash('sha256').update(prevHash, 'utf8').update(canonical, 'utf8').digest('hex');
}

/** Seals every unsealed record (all tenants, or one). Returns how many it sealed. Safe to run in N processes. */
export async function sealAudit(db: Db, opts: { tenantId?: string; batch?: number } = {}): Promise<number> {
  const batch = opts.batch ?? 1000;
  const tenants = opts.tenantId
    ? [opts.tenantId]
    : ((await db('audit_log').whereNull('seq').distinct('tenant_id').limit(1000)) as { tenant_id: string }[]).map((r) => r.tenant_id);
  let sealed = 0;
  for (const tenantId of tenants) {
    for (;;) {
      const n = await db.transaction(async (trx) => {
        await trx.raw(
          `INSERT INTO audit_chain_heads (tenant_id, seq, hash) VALUES (?, 0, ?) ON CONFLICT (tenant_id) DO NOTHING`,
          [tenantId, GENESIS_HASH],
        );
        const head = (await trx('audit_chain_heads').where({ tenant_id: tenantId }).forUpdate().first()) as { seq: string | number; hash: string };
        const rows = (await trx('audit_log').where({ tenant_id: tenantId }).whereNull('seq').orderBy('id').limit(batch)) as AuditRow[];
        if (rows.length === 0) return 0;
        let seq = Number(head.seq);
        let prev = head.hash;
        const ids: number[] = [], seqs: number[] = [], prevs: string[] = [], hashes: string[] = [];
        for (const row of rows) {
          seq += 1;
          const hash = chainHash(prev, canonicalRecord(row, seq));
          ids.push(Number(row.id)); seqs.push(seq); prevs.push(prev); hashes.push(hash);
          prev = hash;
        }
        await trx.raw(
          `UPDATE audit_log a SET seq = v.seq, prev_hash = v.prev, row_hash = v.hash
             FROM (SELECT unnest(?::bigint[]) AS id, unnest(?::bigint[]) AS seq, unnest(?::text[]) AS prev, unnest(?::text[]) AS hash) v
            WHERE a.id = v.id`,
          [ids, seqs, prevs, hashes],
        );
        await trx('audit_chain_heads').where({ tenant_id: tenantId }).update({ seq, hash: prev });
        return rows.length;
      });
      sealed += n;
      if (n < batch) break;
    }
  }
  return sealed;
}

export interface AuditVerifyResult {
  tenantId: string;
  ok: boolean;
  sealed: number;
  unsealed: number;
  /** The first broken link, when the chain does not verify. */
  broken?: { seq: number; id: number; reason: string };
}

/** Walks a tenant's chain from the start and names the first link that does not verify. */
export async function verifyAudit(db: Db, tenantId: string): Promise<AuditVerifyResult> {
  let prev = GENESIS_HASH;
  let expected = 1;
  let lastSeq = 0;
  const page = 2000;
  for (;;) {
    const rows = (await db('audit_log')
      .where({ tenant_id: tenantId })
      .whereNotNull('seq')
      .andWhere('seq', '>', lastSeq)
      .orderBy('seq')
      .limit(page)) as AuditRow[];
    for (const row of rows) {
      const seq = Number(row.seq);
      const broken = (reason: string): AuditVerifyResult => ({
        tenantId, ok: false, sealed: expected - 1, unsealed: -1, broken: { seq, id: Number(row.id), reason },
      });
      if (seq !== expected) return withUnsealed(db, broken(`sequence gap: expected ${expected}`));
      if (row.prev_hash !== prev) return withUnsealed(db, broken('prev_hash does not match the previous row_hash'));
      const hash = chainHash(prev, canonicalRecord(row, seq));
      if (hash !== row.row_hash) return withUnsealed(db, broken('row_hash does not match the row content'));
      prev = hash;
      expected += 1;
      lastSeq = seq;
    }
    if (rows.length < page) break;
  }
  const head = (await db('audit_chain_heads').where({ tenant_id: tenantId }).first()) as { seq: string | number; hash: string } | undefined;
  const result: AuditVerifyResult = { tenantId, ok: true, sealed: expected - 1, unsealed: 0 };
  if (head && (Number(head.seq) !== lastSeq || head.hash !== prev)) {
    result.ok = false;
    result.broken = { seq: Number(head.seq), id: 0, reason: 'chain head does not match the last sealed row (rows removed at the end?)' };
  }
  return withUnsealed(db, result);
}

async function withUnsealed(db: Db, r: AuditVerifyResult): Promise<AuditVerifyResult> {
  const [{ n }] = (await db('audit_log').where({ tenant_id: r.tenantId }).whereNull('seq').count({ n: '*' })) as [{ n: string | number }];
  return { ...r, unsealed: Number(n) };
}
