/**
 * The transactional outbox, the event log, merchant webhook endpoints and delivery attempts.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    // Every side effect leaves through here, written in the transaction that causes it.
    `CREATE TABLE outbox (
      id           bigserial PRIMARY KEY,
      tenant_id    uuid REFERENCES tenants(id),
      kind         text NOT NULL,
      payload      jsonb NOT NULL,
      dedupe_key   text UNIQUE,
      status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead', 'cancelled')),
      attempts     int NOT NULL DEFAULT 0,
      run_at       timestamptz NOT NULL,
      lease_token  uuid,
      locked_until timestamptz,
      last_error   text,
      created_at   timestamptz NOT NULL,
      updated_at   timestamptz NOT NULL,
      done_at      timestamptz
    )`,
    `CREATE INDEX outbox_due ON outbox (run_at, id) WHERE status = 'pending'`,
    `CREATE INDEX outbox_dead ON outbox (tenant_id, id) WHERE status = 'dead'`,

    `CREATE TABLE events (
      id         uuid PRIMARY KEY,
      tenant_id  uuid NOT NULL REFERENCES tenants(id),
      type       text NOT NULL,
      object_id  text NOT NULL,
      data       jsonb NOT NULL,
      created_at timestamptz NOT NULL
    )`,
    `CREATE INDEX events_tenant_list ON events (tenant_id, created_at DESC, id DESC)`,
    `CREATE INDEX events_object ON events (object_id)`,

    `CREATE TABLE webhook_endpoints (
      id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id       uuid NOT NULL REFERENCES tenants(id),
      url             text NOT NULL,
      events          text[] NOT NULL,
      description     text NOT NULL DEFAULT '',
      secret_enc      text NOT NULL,
      status          text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled', 'removed')),
      disabled_reason text,
      created_at      timestamptz NOT NULL,
      updated_at      timestamptz NOT NULL
    )`,
    `CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at DESC, id DESC)`,

    `CREATE TABLE webhook_attempts (
      id               bigserial PRIMARY KEY,
      tenant_id        uuid NOT NULL REFERENCES tenants(id),
      event_id         uuid NOT NULL REFERENCES events(id),
      endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints(id),
      attempt          int NOT NULL,
      status_code      int,
      latency_ms       int NOT NULL,
      response_excerpt text NOT NULL DEFAULT '',
      error            text,
      outcome          text NOT NULL CHECK (outcome IN ('delivered', 'retry', 'gone', 'gave_up')),
      created_at       timestamptz NOT NULL
    )`,
    `CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, id)`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [`DROP TABLE IF EXISTS webhook_attempts, webhook_endpoints, events, outbox CASCADE`]);
}
