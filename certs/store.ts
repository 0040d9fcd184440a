/**
 * Signing certificates per tenant, in `signing_certs`: the certificate and chain in clear, the
 * private key sealed with AES-256-GCM under the master key (bound to the certificate row), never
 * logged, never returned by the API.
 *
 * One certificate is active per tenant. Importing a new one retires the old (rotation): new
 * receipts use the new certificate, old receipts keep the certificate they embed and still verify.
 * In development, a tenant with no certificate gets one from the dev CA on first use.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Db, Trx } from '../gateway/db/knex.js';
import type { Clock } from '../gateway/clock.js';
import type { Config } from '../gateway/config.js';
import type { SecretBox } from '../gateway/secrets/secret-box.js';
import { FeegateError } from '../gateway/errors.js';
import { appendAudit } from '../gateway/audit/audit-log.js';
import { checkSigningCert } from './checks.js';
import { loadOrCreateDevCa } from './dev-ca.js';
import { certBase64, issueLeaf, splitPem, type CaMaterial } from './x509.js';
import type { SigningMaterial } from './pkcs12.js';

export interface CertRow {
  id: string;
  tenant_id: string;
  status: 'active' | 'retired';
  source: 'dev_ca' | 'pkcs12' | 'pem';
  subject: string;
  issuer: string;
  serial: string;
  tax_code: string | null;
  fingerprint: string;
  not_before: Date;
  not_after: Date;
  cert_pem: string;
  chain_pem: string;
  key_enc: string;
  created_at: Date;
  retired_at: Date | null;
}

/** What signing needs, prepared once per certificate and kept in memory. */
export interface Signer {
  certId: string;
  certPem: string;
  chainPems: string[];
  key: crypto.KeyObject;
  subject: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** KeyInfo content (X509SubjectName + leaf and chain certificates), built once. */
  keyInfoContent: string;
}

const keyPurpose = (certId: string) => `signing-key:${certId}`;

function xmlText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function certJson(c: CertRow, now: Date, warnDays: number) {
  const daysLeft = Math.floor((new Date(c.not_after).getTime() - now.getTime()) / 86400_000);
  return {
    id: c.id,
    object: 'signing_cert' as const,
    status: c.status,
    source: c.source,
    subject: c.subject,
    issuer: c.issuer,
    serial: c.serial,
    tax_code: c.tax_code,
    fingerprint_sha256: c.fingerprint,
    not_before: new Date(c.not_before).toISOString(),
    not_after: new Date(c.not_after).toISOString(),
    days_left: daysLeft,
    expiring_soon: daysLeft <= warnDays,
    created_at: new Date(c.created_at).toISOString(),
  };
}

export class CertStore {
  private readonly signers = new Map<string, Signer>();
  private devCa?: CaMaterial;
  private fileAnchors?: string[];

  constructor(private readonly opts: { db: Db; clock: Clock; config: Config; secrets: SecretBox }) {}

  /** The development CA (created on first call), or undefined outside development. */
  dev(): CaMaterial | undefined {
    const { config } = this.opts;
    if (config.mode !== 'development') return undefined;
    this.devCa ??= loadOrCreateDevCa(config.devCaDir ?? path.join(config.dataDir, 'dev-ca'));
    return this.devCa;
  }

  /** Trust anchors: the operator's PEM bundle (FEEGATE_TRUST_ANCHORS), plus the dev CA in development. */
  anchors(): string[] {
    const file = this.opts.config.trustAnchorsFile;
    this.fileAnchors ??= file ? splitPem(fs.readFileSync(file, 'utf8')) : [];
    const dev = this.dev();
    return [...this.fileAnchors, ...(dev ? [dev.certPem] : [])];
  }

  /** Checks and stores a certificate for a tenant; it becomes the active one (rotation). */
  async add(trx: Trx, tenant: { id: string; tax_code: string }, m: SigningMaterial, source: CertRow['source'], actor: string): Promise<CertRow> {
    const now = this.opts.clock.now();
    const { info } = checkSigningCert({
      certPem: m.certPem,
      keyPem: m.keyPem,
      chainPems: m.chainPems,
      anchors: this.anchors(),
      at: now,
      taxCode: tenant.tax_code,
    });
    const id = crypto.randomUUID();
    const existing = (await trx('signing_certs').where({ tenant_id: tenant.id, fingerprint: info.fingerprint }).first()) as CertRow | undefined;
    if (existing) {
      if (existing.status === 'active') return existing;
      throw new FeegateError('FEEGATE_ERR_VALIDATION', 'This certificate was used before and retired; a retired certificate is not reactivated');
    }
    await trx('signing_certs').where({ tenant_id: tenant.id, status: 'active' }).update({ status: 'retired', retired_at: now });
    const [row] = (await trx('signing_certs')
      .insert({
        id,
        tenant_id: tenant.id,
        status: 'active',
        source,
        subject: info.subject,
        issuer: info.issuer,
        serial: info.serial,
        tax_code: info.taxCode,
        fingerprint: info.fingerprint,
        not_before: info.notBefore,
        not_after: info.notAfter,
        cert_pem: m.certPem,
        chain_pem: m.chainPems.join(''),
        key_enc: this.opts.secrets.seal(m.keyPem, keyPurpose(id)),
        created_at: now,
      })
      .returning('*')) as CertRow[];
    await appendAudit(trx, this.opts.clock, {
      tenantId: tenant.id,
      actor,
      action: 'signing_cert.activated',
      entityType: 'signing_cert',
      entityId: id,
      data: { subject: info.subject, serial: info.serial, not_after: info.notAfter.toISOString(), source },
    });
    return row!;
  }

  async list(db: Db | Trx, tenantId?: string): Promise<CertRow[]> {
    const q = db('signing_certs').orderBy('created_at', 'desc');
    if (tenantId) q.where({ tenant_id: tenantId });
    return (await q) as CertRow[];
  }

  /**
   * The tenant's signer for a document signed now. The certificate's validity is checked on every
   * call; key match, key usage and chain are checked when it is loaded into memory.
   */
  async signer(trx: Trx | Db, tenant: { id: string; name: string; tax_code: string }): Promise<Signer> {
    let row = (await trx('signing_certs').where({ tenant_id: tenant.id, status: 'active' }).first('id', 'not_before', 'not_after')) as
      Pick<CertRow, 'id' | 'not_before' | 'not_after'> | undefined;
    if (!row) row = await this.issueDevCert(trx, tenant);
    const now = this.opts.clock.now();
    if (now > new Date(row.not_after))
      throw new FeegateError(
        'FEEGATE_ERR_CERT_EXPIRED',
        `The signing certificate of ${tenant.name} expired at ${new Date(row.not_after).toISOString()}; import a new one`,
      );
    if (now < new Date(row.not_before))
      throw new FeegateError(
        'FEEGATE_ERR_CERT_NOT_YET_VALID',
        `The signing certificate of ${tenant.name} is valid from ${new Date(row.not_before).toISOString()}`,
      );
    const cached = this.signers.get(row.id);
    if (cached) return cached;
    const full = (await trx('signing_certs').where({ id: row.id }).first()) as CertRow;
    const keyPem = this.opts.secrets.open(full.key_enc, keyPurpose(full.id));
    const chainPems = splitPem(full.chain_pem);
    checkSigningCert({ certPem: full.cert_pem, keyPem, chainPems, anchors: this.anchors(), at: now, taxCode: tenant.tax_code });
    const signer: Signer = {
      certId: full.id,
      certPem: full.cert_pem,
      chainPems,
      key: crypto.createPrivateKey(keyPem),
      subject: full.subject,
      serial: full.serial,
      notBefore: new Date(full.not_before),
      notAfter: new Date(full.not_after),
      keyInfoContent: `<X509Data><X509SubjectName>${xmlText(full.subject)}</X509SubjectName>${[full.cert_pem, ...chainPems]
        .map((c) => `<X509Certificate>${certBase64(c)}</X509Certificate>`)
        .join('')}</X509Data>`,
    };
    this.signers.set(full.id, signer);
    return signer;
  }

  /** Development: a certificate from the dev CA for a tenant that has none (race-safe). */
  private async issueDevCert(trx: Trx | Db, tenant: { id: string; name: string; tax_code: string }): Promise<Pick<CertRow, 'id' | 'not_before' | 'not_after'>> {
    const ca = this.dev();
    if (!ca) {
      throw new FeegateError(
        'FEEGATE_ERR_SIGNING_CERT_MISSING',
        `${tenant.name} has no signing certificate: import one with \`feegate certs import --tenant <code> <file.p12>\``,
      );
    }
    const now = this.opts.clock.now();
    const leaf = issueLeaf({
      ca,
      commonName: tenant.name,
      taxCode: tenant.tax_code,
      notBefore: new Date(now.getTime() - 86400_000),
      notAfter: new Date(now.getTime() + 3 * 365 * 86400_000),
    });
    try {
      // A savepoint inside the caller's transaction (PGlite has one connection: no second transaction).
      await trx.transaction((t) => this.add(t, tenant, { ...leaf, chainPems: [] }, 'dev_ca', 'dev-ca'));
    } catch (err) {
      // Another process issued one at the same moment: use theirs.
      if ((err as { code?: string }).code !== '23505') throw err;
    }
    return (await trx('signing_certs').where({ tenant_id: tenant.id, status: 'active' }).first('id', 'not_before', 'not_after')) as Pick<
      CertRow,
      'id' | 'not_before' | 'not_after'
    >;
  }
}
