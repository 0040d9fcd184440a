/**
 * Per-unit provider credentials (terminal codes, partner codes, keys): all fields sealed together
 * with AES-256-GCM under the master key; only the names of the fields are stored in clear.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `CREATE TABLE provider_credentials (
      tenant_id   uuid NOT NULL REFERENCES tenants(id),
      provider    text NOT NULL,
      fields      text[] NOT NULL,
      sealed      text NOT NULL,
      created_at  timestamptz NOT NULL,
      updated_at  timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, provider)
    )`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [`DROP TABLE IF EXISTS provider_credentials`]);
}
