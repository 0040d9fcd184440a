/** Migrations are TypeScript modules listed here in order (works the same under tsx and tap). */
import type { Knex } from 'knex';
import * as m0001 from './0001_core.js';
import * as m0002 from './0002_outbox_events_webhooks.js';
import * as m0003 from './0003_audit_chain_table.js';
import * as m0004 from './0004_receipts_certs.js';
import * as m0005 from './0005_provider_credentials.js';
import * as m0006 from './0006_refund_checks.js';
import * as m0008 from './0008_provider_events_per_payment.js';
import * as m0010 from './0010_idempotency_exact_answers.js';
import * as m0011 from './0011_provider_requests.js';
import * as m0013 from './0013_outbox_lanes.js';
import * as m0014 from './0014_scale_indexes.js';

const migrations: Record<string, { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> }> = {
  '0001_core': m0001,
  '0002_outbox_events_webhooks': m0002,
  '0003_audit_chain_table': m0003,
  '0004_receipts_certs': m0004,
  '0005_provider_credentials': m0005,
  '0006_refund_checks': m0006,
  '0008_provider_events_per_payment': m0008,
  '0010_idempotency_exact_answers': m0010,
  '0011_provider_requests': m0011,
  '0013_outbox_lanes': m0013,
  '0014_scale_indexes': m0014,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name]!,
};
