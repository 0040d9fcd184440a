/**
 * The audit log: append-only (enforced by triggers), hash-chained per tenant.
 *
 * A record is written in the same transaction as the change it describes (appendAudit), with the
 * id of that transaction (txid). The chain is then extended by a sealer (sealAudit) that, holding
 * the tenant's chain head row locked, takes the records that became final since its cursor, in
 * (txid, id) order, and appends to audit_chain for each the next sequence number and
 * row_hash = sha256(prev_hash || canonical row), the canonical row in RFC 8785 JSON.
 *
 * "Final": every transaction older than the oldest one still running (pg_snapshot_xmin) has
 * committed or rolled back, so no record with a smaller txid can appear later; the cursor never
 * skips one. Sealing after commit keeps the chain head out of the payment hot path (payments of
 * one tenant do not queue behind one lock) and audit rows are never updated. A record waits about
 * a second to be sealed; `feegate audit verify` reports how many wait.
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
}

interface ChainRow extends AuditRow {
  seq: string | number;
  prev_hash: string;
  row_hash: string;
  audit_id: string | number | null;
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

/** Seals every final record (all tenants, or one). Returns how many it sealed. Safe to run in N processes. */
export async function sealAudit(db: Db, opts: { tenantId?: string; batch?: number } = {}): Promise<number> {
  // Small batches: hashing is synchronous work, and a long one would stall the requests of this process.
  const batch = opts.batch ?? 200;
  const tenants = opts.tenantId
    ? [opts.tenantId]
    : (
        (await db.raw(
          `SELECT t.id FROM tenants t LEFT JOIN audit_chain_heads h ON h.tenant_id = t.id
          WHERE EXISTS (SELECT 1 FROM audit_log a WHERE a.tenant_id = t.id
                          AND (a.txid, a.id) > (COALESCE(h.cursor_txid, '0'::xid8), COALESCE(h.cursor_id, 0))
                          AND a.txid < pg_snapshot_xmin(pg_current_snapshot()))`,
        )) as { rows: { id: string }[] }
      ).rows.map((r) => r.id);
  let sealed = 0;
  for (const tenantId of tenants) {
    for (;;) {
      const n = await db.transaction(async (trx) => {
        await trx.raw(
          `INSERT INTO audit_chain_heads (tenant_id, seq, hash, cursor_txid, cursor_id) VALUES (?, 0, ?, '0'::xid8, 0) ON CONFLICT (tenant_id) DO NOTHING`,
          [tenantId, GENESIS_HASH],
        );
        const {
          rows: [head],
        } = (await trx.raw(
          `SELECT seq, hash, cursor_txid::text AS cursor_txid, cursor_id, pg_snapshot_xmin(pg_current_snapshot())::text AS horizon
             FROM audit_chain_heads WHERE tenant_id = ? FOR UPDATE`,
          [tenantId],
        )) as { rows: { seq: string | number; hash: string; cursor_txid: string; cursor_id: string | number; horizon: string }[] };
        const { rows } = (await trx.raw(
          `SELECT a.id, a.tenant_id, a.actor, a.action, a.entity_type, a.entity_id, a.data, a.created_at, a.txid::text AS txid
             FROM audit_log a
            WHERE a.tenant_id = ? AND (a.txid, a.id) > (?::xid8, ?::bigint) AND a.txid < ?::xid8
            ORDER BY a.txid, a.id LIMIT ?`,
          [tenantId, head!.cursor_txid, head!.cursor_id, head!.horizon, batch],
        )) as { rows: (AuditRow & { txid: string })[] };
        if (rows.length === 0) return 0;
        let seq = Number(head!.seq);
        let prev = head!.hash;
        const chain = rows.map((row) => {
          seq += 1;
          const hash = chainHash(prev, canonicalRecord(row, seq));
          const link = { tenant_id: tenantId, seq, audit_id: row.id, prev_hash: prev, row_hash: hash };
          prev = hash;
          return link;
        });
        await trx('audit_chain').insert(chain);
        const last = rows.at(-1)!;
        await trx.raw(`UPDATE audit_chain_heads SET seq = ?, hash = ?, cursor_txid = ?::xid8, cursor_id = ? WHERE tenant_id = ?`, [
          seq,
          prev,
          last.txid,
          last.id,
          tenantId,
        ]);
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
    const rows = (await db('audit_chain as c')
      .leftJoin('audit_log as a', 'a.id', 'c.audit_id')
      .where('c.tenant_id', tenantId)
      .andWhere('c.seq', '>', lastSeq)
      .orderBy('c.seq')
      .limit(page)
      .select('a.*', 'c.seq', 'c.prev_hash', 'c.row_hash', 'c.audit_id')) as ChainRow[];
    for (const row of rows) {
      const seq = Number(row.seq);
      const broken = (reason: string): AuditVerifyResult => ({
        tenantId,
        ok: false,
        sealed: expected - 1,
        unsealed: -1,
        broken: { seq, id: Number(row.audit_id), reason },
      });
      if (seq !== expected) return withUnsealed(db, broken(`sequence gap: expected ${expected}`));
      if (row.id === null || row.id === undefined) return withUnsealed(db, broken('the audit record of this link is missing'));
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
    result.broken = { seq: Number(head.seq), id: 0, reason: 'chain head does not match the last link (links removed at the end?)' };
  }
  return withUnsealed(db, result);
}

async function withUnsealed(db: Db, r: AuditVerifyResult): Promise<AuditVerifyResult> {
  const { rows } = (await db.raw(
    `SELECT count(*) AS n FROM audit_log a
       LEFT JOIN audit_chain_heads h ON h.tenant_id = a.tenant_id
      WHERE a.tenant_id = ? AND (h.tenant_id IS NULL OR (a.txid, a.id) > (h.cursor_txid, h.cursor_id))`,
    [r.tenantId],
  )) as { rows: { n: string | number }[] };
  return { ...r, unsealed: Number(rows[0]!.n) };
}
