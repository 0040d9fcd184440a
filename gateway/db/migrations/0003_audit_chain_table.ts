/**
 * The audit chain moves out of audit_log into audit_chain. Sealing used to UPDATE each audit row
 * (a new tuple and two index changes per row, measured to cost about a third of payment
 * throughput); now audit_log is written once and never updated, and the sealer INSERTs narrow
 * chain rows. Which rows are ready to seal is known without scanning: each audit row records the
 * id of the transaction that wrote it (txid), and every row whose txid is older than the oldest
 * transaction still running is visible and final, so the sealer walks a (txid, id) cursor.
 * Existing chains are carried over unchanged.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `CREATE TABLE audit_chain (
      tenant_id uuid NOT NULL REFERENCES tenants(id),
      seq       bigint NOT NULL,
      audit_id  bigint NOT NULL UNIQUE REFERENCES audit_log(id),
      prev_hash text NOT NULL,
      row_hash  text NOT NULL,
      PRIMARY KEY (tenant_id, seq)
    )`,
    `INSERT INTO audit_chain (tenant_id, seq, audit_id, prev_hash, row_hash)
       SELECT tenant_id, seq, id, prev_hash, row_hash FROM audit_log WHERE seq IS NOT NULL`,
    `ALTER TABLE audit_log DISABLE TRIGGER audit_log_seal_only`,
    // Rows written before this migration: sealed ones sit before every cursor, unsealed ones after.
    `ALTER TABLE audit_log ADD COLUMN txid xid8`,
    `UPDATE audit_log SET txid = CASE WHEN seq IS NULL THEN '2'::xid8 ELSE '1'::xid8 END`,
    `ALTER TABLE audit_log ALTER COLUMN txid SET DEFAULT pg_current_xact_id(), ALTER COLUMN txid SET NOT NULL`,
    `ALTER TABLE audit_chain_heads ADD COLUMN cursor_txid xid8 NOT NULL DEFAULT '2'::xid8, ADD COLUMN cursor_id bigint NOT NULL DEFAULT 0`,
    `DROP TRIGGER audit_log_seal_only ON audit_log`,
    `DROP FUNCTION feegate_audit_seal_only`,
    `ALTER TABLE audit_log DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN row_hash`,
    `CREATE INDEX audit_log_tenant_cursor ON audit_log (tenant_id, txid, id)`,
    `CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log FOR EACH ROW EXECUTE FUNCTION feegate_refuse_change()`,
    `CREATE TRIGGER audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain FOR EACH ROW EXECUTE FUNCTION feegate_refuse_change()`,
  ]);
}

export async function down(): Promise<void> {
  throw new Error('0003_audit_chain_table cannot be undone: the chain would have to be rebuilt');
}
