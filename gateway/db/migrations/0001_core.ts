/**
 * Core schema: tenants and API keys, bills, payments, refunds, provider events, the double-entry
 * journal, the hash-chained audit log and idempotency keys. Plain SQL, valid on PostgreSQL 15+ and
 * on PGlite (PostgreSQL 18 in wasm). Money is bigint VND with CHECKs; history tables refuse UPDATE
 * and DELETE in the database itself.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `CREATE TABLE tenants (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code        text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_-]{1,62}$'),
      name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 400),
      kind        text NOT NULL CHECK (kind IN ('agency', 'school')),
      tax_code    text NOT NULL CHECK (tax_code ~ '^[0-9]{10}(-[0-9]{3}){0,1}$'),
      address     text NOT NULL DEFAULT '',
      budget_code text,
      created_at  timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE TABLE api_keys (
      id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id   uuid NOT NULL REFERENCES tenants(id),
      role        text NOT NULL CHECK (role IN ('integration', 'finance', 'admin')),
      mode        text NOT NULL CHECK (mode IN ('live', 'test')),
      prefix      text NOT NULL,
      key_hash    text NOT NULL UNIQUE,
      label       text NOT NULL DEFAULT '',
      created_at  timestamptz NOT NULL DEFAULT now(),
      revoked_at  timestamptz
    )`,
    `CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC, id DESC)`,
    `CREATE TABLE bills (
      id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id       uuid NOT NULL REFERENCES tenants(id),
      external_ref    text NOT NULL CHECK (length(external_ref) BETWEEN 1 AND 100),
      kind            text NOT NULL CHECK (kind IN ('procedure_fee', 'tuition', 'charge')),
      dossier_code    text,
      procedure_code  text,
      student_code    text,
      school_year     text,
      term            text,
      description     text NOT NULL DEFAULT '',
      payer           jsonb NOT NULL,
      currency        text NOT NULL DEFAULT 'VND' CHECK (currency = 'VND'),
      total_amount    bigint NOT NULL CHECK (total_amount > 0 AND total_amount <= 1000000000000000),
      amount_paid     bigint NOT NULL DEFAULT 0 CHECK (amount_paid >= 0),
      allow_partial   boolean NOT NULL DEFAULT false,
      due_date        date,
      status          text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'partially_paid', 'paid', 'cancelled', 'expired')),
      metadata        jsonb NOT NULL DEFAULT '{}',
      request_hash    text NOT NULL,
      created_at      timestamptz NOT NULL,
      updated_at      timestamptz NOT NULL,
      CONSTRAINT bills_tenant_external_ref UNIQUE (tenant_id, external_ref),
      CHECK (kind <> 'procedure_fee' OR dossier_code IS NOT NULL),
      CHECK (kind <> 'tuition' OR (student_code IS NOT NULL AND school_year IS NOT NULL AND term IS NOT NULL))
    )`,
    `CREATE INDEX bills_tenant_list ON bills (tenant_id, created_at DESC, id DESC)`,
    `CREATE TABLE bill_items (
      bill_id     uuid NOT NULL REFERENCES bills(id),
      position    int NOT NULL,
      fee_code    text NOT NULL,
      name        text NOT NULL,
      amount      bigint NOT NULL CHECK (amount > 0 AND amount <= 1000000000000000),
      legal_basis text NOT NULL DEFAULT '',
      PRIMARY KEY (bill_id, position)
    )`,
    `CREATE TABLE payments (
      id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id        uuid NOT NULL REFERENCES tenants(id),
      bill_id          uuid NOT NULL REFERENCES bills(id),
      reference        text NOT NULL UNIQUE,
      provider         text NOT NULL,
      amount           bigint NOT NULL CHECK (amount > 0 AND amount <= 1000000000000000),
      currency         text NOT NULL DEFAULT 'VND' CHECK (currency = 'VND'),
      status           text NOT NULL CHECK (status IN ('created', 'pending', 'unknown', 'succeeded', 'failed',
                         'cancelled', 'expired', 'partially_refunded', 'refunded')),
      amount_refunded  bigint NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
      provider_txn_id  text,
      checkout         jsonb,
      return_url       text,
      failure_code     text,
      failure_message  text,
      expires_at       timestamptz NOT NULL,
      next_check_at    timestamptz,
      check_count      int NOT NULL DEFAULT 0,
      created_at       timestamptz NOT NULL,
      updated_at       timestamptz NOT NULL,
      succeeded_at     timestamptz
    )`,
    `CREATE INDEX payments_tenant_list ON payments (tenant_id, created_at DESC, id DESC)`,
    `CREATE INDEX payments_bill ON payments (bill_id)`,
    `-- At most one payment in flight per bill (Lago's partial unique index).
    CREATE UNIQUE INDEX payments_one_in_flight_per_bill ON payments (bill_id)
      WHERE status IN ('created', 'pending', 'unknown')`,
    `CREATE INDEX payments_janitor ON payments (next_check_at) WHERE status IN ('created', 'pending', 'unknown')`,
    `CREATE TABLE refunds (
      id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id          uuid NOT NULL REFERENCES tenants(id),
      payment_id         uuid NOT NULL REFERENCES payments(id),
      reference          text NOT NULL UNIQUE,
      amount             bigint NOT NULL CHECK (amount > 0 AND amount <= 1000000000000000),
      status             text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'unknown')),
      reason             text NOT NULL DEFAULT '',
      provider_refund_id text,
      failure_message    text,
      created_at         timestamptz NOT NULL,
      updated_at         timestamptz NOT NULL
    )`,
    `CREATE INDEX refunds_payment ON refunds (payment_id, created_at)`,
    `-- Every provider message we believed, deduplicated (Saleor's rule).
    CREATE TABLE provider_events (
      id              bigserial PRIMARY KEY,
      provider        text NOT NULL,
      provider_txn_id text NOT NULL,
      event_type      text NOT NULL,
      payment_id      uuid REFERENCES payments(id),
      outcome         text NOT NULL,
      amount          bigint,
      payload         jsonb NOT NULL,
      received_at     timestamptz NOT NULL,
      CONSTRAINT provider_events_dedupe UNIQUE (provider, provider_txn_id, event_type)
    )`,
    `-- Double entry as transfers: each row debits one account and credits another by the same
    -- amount, so every entry balances by construction. Balances are sums, never stored.
    CREATE TABLE ledger_transfers (
      id              bigserial PRIMARY KEY,
      tenant_id       uuid NOT NULL REFERENCES tenants(id),
      entry_id        uuid NOT NULL,
      kind            text NOT NULL,
      debit_account   text NOT NULL,
      credit_account  text NOT NULL CHECK (credit_account <> debit_account),
      amount          bigint NOT NULL CHECK (amount > 0 AND amount <= 1000000000000000),
      payment_id      uuid REFERENCES payments(id),
      refund_id       uuid REFERENCES refunds(id),
      created_at      timestamptz NOT NULL
    )`,
    `CREATE INDEX ledger_transfers_tenant ON ledger_transfers (tenant_id, id)`,
    `CREATE INDEX ledger_transfers_payment ON ledger_transfers (payment_id)`,
    `-- Append-only audit log, hash-chained per tenant. Rows are written in the business
    -- transaction; a sealer then gives them a sequence number and chains them.
    CREATE TABLE audit_log (
      id          bigserial PRIMARY KEY,
      tenant_id   uuid NOT NULL REFERENCES tenants(id),
      actor       text NOT NULL,
      action      text NOT NULL,
      entity_type text NOT NULL,
      entity_id   text NOT NULL,
      data        jsonb NOT NULL DEFAULT '{}',
      created_at  timestamptz NOT NULL,
      seq         bigint,
      prev_hash   text,
      row_hash    text,
      CONSTRAINT audit_log_tenant_seq UNIQUE (tenant_id, seq)
    )`,
    `CREATE INDEX audit_log_unsealed ON audit_log (tenant_id, id) WHERE seq IS NULL`,
    `CREATE TABLE audit_chain_heads (
      tenant_id uuid PRIMARY KEY REFERENCES tenants(id),
      seq       bigint NOT NULL,
      hash      text NOT NULL
    )`,
    `CREATE TABLE idempotency_keys (
      tenant_id       uuid NOT NULL REFERENCES tenants(id),
      key             text NOT NULL,
      method          text NOT NULL,
      path            text NOT NULL,
      fingerprint     text NOT NULL,
      status          text NOT NULL CHECK (status IN ('in_flight', 'done')),
      locked_until    timestamptz,
      recovery        jsonb,
      response_status int,
      response_body   jsonb,
      created_at      timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, key)
    )`,
    `CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)`,
    `CREATE FUNCTION feegate_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END $$`,
    `CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
      FOR EACH ROW EXECUTE FUNCTION feegate_refuse_change()`,
    `CREATE TRIGGER provider_events_append_only BEFORE UPDATE OR DELETE ON provider_events
      FOR EACH ROW EXECUTE FUNCTION feegate_refuse_change()`,
    `CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION feegate_refuse_change()`,
    `-- The only update an audit row may ever get: being sealed once.
    CREATE FUNCTION feegate_audit_seal_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.row_hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
         AND NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.actor = OLD.actor
         AND NEW.action = OLD.action AND NEW.entity_type = OLD.entity_type AND NEW.entity_id = OLD.entity_id
         AND NEW.data = OLD.data AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;
      END IF;
      RAISE EXCEPTION 'audit_log rows are append-only' USING ERRCODE = 'insufficient_privilege';
    END $$`,
    `CREATE TRIGGER audit_log_seal_only BEFORE UPDATE ON audit_log
      FOR EACH ROW EXECUTE FUNCTION feegate_audit_seal_only()`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `DROP TABLE IF EXISTS idempotency_keys, audit_chain_heads, audit_log, ledger_transfers, provider_events,
      refunds, payments, bill_items, bills, api_keys, tenants CASCADE`,
    `DROP FUNCTION IF EXISTS feegate_refuse_change, feegate_audit_seal_only`,
  ]);
}
