/**
 * E-receipts and signing certificates: per-tenant certificates (key sealed at rest, one active),
 * receipt series with a per-year counter (the number is taken in the transaction that stores the
 * receipt, so numbers have no gaps and no duplicates), and the receipts themselves: the exact
 * signed XML, append-only, one original per payment and one adjustment per refund.
 */
import type { Knex } from 'knex';
import { runStatements } from './run.js';

export async function up(knex: Knex): Promise<void> {
  await runStatements(knex, [
    `CREATE TABLE signing_certs (
      id          uuid PRIMARY KEY,
      tenant_id   uuid NOT NULL REFERENCES tenants(id),
      status      text NOT NULL CHECK (status IN ('active', 'retired')),
      source      text NOT NULL CHECK (source IN ('dev_ca', 'pkcs12', 'pem')),
      subject     text NOT NULL,
      issuer      text NOT NULL,
      serial      text NOT NULL,
      tax_code    text,
      fingerprint text NOT NULL,
      not_before  timestamptz NOT NULL,
      not_after   timestamptz NOT NULL,
      cert_pem    text NOT NULL,
      chain_pem   text NOT NULL DEFAULT '',
      key_enc     text NOT NULL,
      created_at  timestamptz NOT NULL,
      retired_at  timestamptz,
      CONSTRAINT signing_certs_tenant_fingerprint UNIQUE (tenant_id, fingerprint)
    )`,
    `CREATE UNIQUE INDEX signing_certs_one_active ON signing_certs (tenant_id) WHERE status = 'active'`,
    `CREATE TABLE receipt_series (
      id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      tenant_id       uuid NOT NULL REFERENCES tenants(id),
      doc_type        text NOT NULL CHECK (doc_type IN ('fee_receipt')),
      template_symbol text NOT NULL CHECK (template_symbol ~ '^0[12]BLP[0-9]-[0-9]{3}$'),
      series_letters  text NOT NULL CHECK (series_letters ~ '^[ABCDEGHKLMNPQRSTUVXY]{2}$'),
      is_default      boolean NOT NULL DEFAULT false,
      created_at      timestamptz NOT NULL,
      CONSTRAINT receipt_series_unique UNIQUE (tenant_id, template_symbol, series_letters)
    )`,
    `CREATE UNIQUE INDEX receipt_series_one_default ON receipt_series (tenant_id) WHERE is_default`,
    `CREATE TABLE receipt_counters (
      series_id   uuid NOT NULL REFERENCES receipt_series(id),
      year        int NOT NULL CHECK (year BETWEEN 2000 AND 2999),
      last_number int NOT NULL CHECK (last_number BETWEEN 1 AND 9999999),
      PRIMARY KEY (series_id, year)
    )`,
    `CREATE TABLE receipts (
      id              uuid PRIMARY KEY,
      tenant_id       uuid NOT NULL REFERENCES tenants(id),
      series_id       uuid NOT NULL REFERENCES receipt_series(id),
      kind            text NOT NULL CHECK (kind IN ('original', 'adjustment')),
      payment_id      uuid NOT NULL REFERENCES payments(id),
      refund_id       uuid REFERENCES refunds(id),
      original_id     uuid REFERENCES receipts(id),
      template_symbol text NOT NULL,
      series_symbol   text NOT NULL,
      year            int NOT NULL,
      number          int NOT NULL CHECK (number BETWEEN 1 AND 9999999),
      lookup_code     text NOT NULL UNIQUE,
      amount          bigint NOT NULL CHECK (amount > 0 AND amount <= 1000000000000000),
      issued_at       timestamptz NOT NULL,
      signing_time    text NOT NULL,
      cert_id         uuid NOT NULL REFERENCES signing_certs(id),
      xml             text NOT NULL,
      xml_sha256      text NOT NULL,
      created_at      timestamptz NOT NULL,
      CONSTRAINT receipts_number_unique UNIQUE (series_id, year, number),
      CHECK ((kind = 'original') = (refund_id IS NULL)),
      CHECK ((kind = 'original') = (original_id IS NULL))
    )`,
    `CREATE UNIQUE INDEX receipts_one_per_payment ON receipts (payment_id) WHERE kind = 'original'`,
    `CREATE UNIQUE INDEX receipts_one_per_refund ON receipts (refund_id) WHERE refund_id IS NOT NULL`,
    `CREATE INDEX receipts_tenant_list ON receipts (tenant_id, created_at DESC, id DESC)`,
    `-- A receipt is a legal document: never edited, never deleted (a refund adds an adjustment).
    CREATE TRIGGER receipts_append_only BEFORE UPDATE OR DELETE ON receipts
      FOR EACH ROW EXECUTE FUNCTION feegate_refuse_change()`,
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await runStatements(knex, [`DROP TABLE IF EXISTS receipts, receipt_counters, receipt_series, signing_certs CASCADE`]);
}
