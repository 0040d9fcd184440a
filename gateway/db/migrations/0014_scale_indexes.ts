/**
 * Plans that do not depend on luck, for a year of data (issue 11, "Scale").
 *
 * - The janitor's index had the very condition of the per-bill "payment in flight?" check
 *   (status IN created/pending/unknown), so after an ANALYZE that saw few payments in flight the
 *   planner could answer that check by scanning every in-flight payment of every bill through it
 *   (payment creation halved at 1,000,000 payments). Its condition now also says
 *   `next_check_at IS NOT NULL`: the janitor's `next_check_at <= $now` implies it, the per-bill
 *   check does not, so only the per-bill indexes can serve that check.
 * - Every filter the list routes offer has an index in the list's own order (tenant, filter,
 *   created_at DESC, id DESC): a page filtered by a rare status reads one page of index, not the table.
 * - The bill-expiry sweep reads only open bills that have a due date, in due-date order.
 * On a large existing database each CREATE INDEX holds writes to its table for the time of the build.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `CREATE INDEX payments_due ON payments (next_check_at)
       WHERE status IN ('created', 'pending', 'unknown') AND next_check_at IS NOT NULL`,
    `DROP INDEX payments_janitor`,
    `CREATE INDEX payments_tenant_status_list ON payments (tenant_id, status, created_at DESC, id DESC)`,
    `CREATE INDEX payments_tenant_provider_list ON payments (tenant_id, provider, created_at DESC, id DESC)`,
    `CREATE INDEX bills_tenant_status_list ON bills (tenant_id, status, created_at DESC, id DESC)`,
    `CREATE INDEX bills_tenant_student_list ON bills (tenant_id, student_code, created_at DESC, id DESC) WHERE student_code IS NOT NULL`,
    `CREATE INDEX bills_open_due ON bills (due_date) WHERE status = 'open' AND due_date IS NOT NULL`,
    `CREATE INDEX events_tenant_type_list ON events (tenant_id, type, created_at DESC, id DESC)`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `DROP INDEX IF EXISTS events_tenant_type_list`,
    `DROP INDEX IF EXISTS bills_open_due`,
    `DROP INDEX IF EXISTS bills_tenant_student_list`,
    `DROP INDEX IF EXISTS bills_tenant_status_list`,
    `DROP INDEX IF EXISTS payments_tenant_provider_list`,
    `DROP INDEX IF EXISTS payments_tenant_status_list`,
    `CREATE INDEX IF NOT EXISTS payments_janitor ON payments (next_check_at) WHERE status IN ('created', 'pending', 'unknown')`,
    `DROP INDEX IF EXISTS payments_due`,
  ]);
}
