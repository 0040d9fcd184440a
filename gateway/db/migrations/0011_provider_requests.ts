/**
 * Every outbound provider operation that moves money or creates something at the provider (a
 * remote checkout's create, a refund) is a stored request with a stable id derived from our own
 * reference, so it is never sent twice: `prepared` (written with the payment or refund), `sent`
 * (committed on its own BEFORE the call: from here on the provider may have it), then `answered`
 * (the answer is booked) or `unknown` (no answer: the provider is asked, never called again).
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `CREATE TABLE provider_requests (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id   uuid NOT NULL REFERENCES tenants(id),
      provider    text NOT NULL,
      kind        text NOT NULL CHECK (kind IN ('checkout_create', 'refund')),
      request_id  text NOT NULL,
      attempt     int NOT NULL DEFAULT 1,
      payment_id  uuid NOT NULL REFERENCES payments(id),
      refund_id   uuid REFERENCES refunds(id),
      state       text NOT NULL CHECK (state IN ('prepared', 'sent', 'answered', 'unknown')),
      outcome     text,
      answer      jsonb,
      created_at  timestamptz NOT NULL,
      sent_at     timestamptz,
      answered_at timestamptz,
      updated_at  timestamptz NOT NULL
    )`,
    // One request per id and provider: the id is what the provider dedupes on (or should).
    `CREATE UNIQUE INDEX provider_requests_request_id ON provider_requests (provider, kind, request_id)`,
    `CREATE UNIQUE INDEX provider_requests_refund ON provider_requests (refund_id) WHERE refund_id IS NOT NULL`,
    `CREATE INDEX provider_requests_payment ON provider_requests (payment_id, kind, attempt)`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [`DROP TABLE IF EXISTS provider_requests`]);
}
