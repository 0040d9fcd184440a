/**
 * Refunds whose outcome we do not know (the provider's answer was lost, or it said "processing")
 * are re-checked by the janitor on a schedule, like payments in flight: next_check_at says when.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `ALTER TABLE refunds ADD COLUMN next_check_at timestamptz, ADD COLUMN check_count int NOT NULL DEFAULT 0`,
    `UPDATE refunds SET next_check_at = updated_at WHERE status IN ('pending', 'unknown')`,
    `CREATE INDEX refunds_due ON refunds (next_check_at) WHERE status IN ('pending', 'unknown')`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [`DROP INDEX IF EXISTS refunds_due`, `ALTER TABLE refunds DROP COLUMN IF EXISTS next_check_at, DROP COLUMN IF EXISTS check_count`]);
}
