/**
 * Provider messages are deduplicated per payment: (provider, provider txn id, event type, payment).
 * A provider transaction number is not unique across orders (a simulator or a provider restarted,
 * a terminal re-provisioned), and a genuine, signed success for a second order whose number was
 * seen before must be applied, not answered "already confirmed". The signature names the order, so
 * a message can never be replayed onto another payment. Every event names its payment (callbacks
 * are recorded only for a payment found), which NOT NULL now says, so the dedupe cannot be skipped.
 * The constraint keeps its name (the callback statement refers to it); the txn id stays its second
 * column, so lookups by transaction number keep their index.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `ALTER TABLE provider_events ALTER COLUMN payment_id SET NOT NULL`,
    `ALTER TABLE provider_events DROP CONSTRAINT provider_events_dedupe`,
    `ALTER TABLE provider_events ADD CONSTRAINT provider_events_dedupe UNIQUE (provider, provider_txn_id, event_type, payment_id)`,
  ]);
}

/** Fails if two payments share a provider transaction id: then the old, global dedupe cannot hold. */
export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `ALTER TABLE provider_events DROP CONSTRAINT provider_events_dedupe`,
    `ALTER TABLE provider_events ADD CONSTRAINT provider_events_dedupe UNIQUE (provider, provider_txn_id, event_type)`,
    `ALTER TABLE provider_events ALTER COLUMN payment_id DROP NOT NULL`,
  ]);
}
