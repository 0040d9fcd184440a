/**
 * Idempotency keys replay their answer byte for byte: the body is stored as the text that was
 * serialised (jsonb would reorder its keys). A claim carries a token, so an answer is stored only
 * for the request whose claim committed: one that began executing.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `ALTER TABLE idempotency_keys ALTER COLUMN response_body TYPE text USING response_body::text`,
    `ALTER TABLE idempotency_keys ADD COLUMN claim_token uuid`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS claim_token`,
    `ALTER TABLE idempotency_keys ALTER COLUMN response_body TYPE jsonb USING response_body::jsonb`,
  ]);
}
