/**
 * Lanes of the outbox (gateway/outbox/lanes.ts): webhook deliveries wait on other people's
 * servers, so they are claimed apart from the work done in our database (receipts, fan-outs), and
 * at most a few at a time per endpoint. Each lane's claim reads its own partial index, so neither
 * scans past the other's rows; the conditions are literal here and in the claims (the planner
 * uses a partial index only when a query states its condition).
 * Indexes only: no column is added and the table is not rewritten.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    // The work lane: everything but deliveries, due first.
    `CREATE INDEX outbox_due_work ON outbox (run_at, id) WHERE status = 'pending' AND kind <> 'webhook.deliver'`,
    // The delivery lane, per endpoint: which endpoints have rows queued, and each one's due rows in order.
    `CREATE INDEX outbox_due_deliveries ON outbox ((payload->>'endpoint_id'), run_at, id) WHERE status = 'pending' AND kind = 'webhook.deliver'`,
    // Deliveries under a lease (in flight, or left by a worker that died): counted against each endpoint's limit.
    `CREATE INDEX outbox_leased_deliveries ON outbox ((payload->>'endpoint_id')) WHERE status = 'pending' AND kind = 'webhook.deliver' AND lease_token IS NOT NULL`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [`DROP INDEX IF EXISTS outbox_due_work, outbox_due_deliveries, outbox_leased_deliveries`]);
}
