/**
 * Provider credentials per unit: each unit (tenant) stores its own terminal/partner codes and keys
 * for each provider. All values are sealed together (AES-256-GCM under the master key, bound to
 * tenant and provider); only field names are in clear. Secrets are never logged and never returned:
 * the API shows non-secret values and "set" for secrets. An in-process cache keeps the payment
 * path off the database; a change is published on commit (db/notify.ts) and every process drops
 * that entry at once. While the change feed is down nothing is served from the cache; CACHE_MS is
 * the last safety net for a feed that is silently dead.
 */
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { PaymentAdapter } from '../../adapters/contract.js';
import { appendAudit } from '../audit/audit-log.js';
import { FeegateError } from '../errors.js';
import type { UrlPolicy } from '../../adapters/url-guard.js';
import { assertUrlAllowed } from '../outbound.js';
import { publishChange, type ChangeFeed } from '../db/notify.js';

const CACHE_MS = 10_000;
/** Fields holding a URL the gateway calls or sends payers to (MoMo/ZaloPay/PayGov `endpoint`, VNPay `pay_url`/`api_url`). */
export const isUrlField = (name: string) => name === 'endpoint' || name.endsWith('_url');
const purpose = (tenantId: string, provider: string) => `provider-credentials:${tenantId}:${provider}`;

export interface CredentialRow {
  tenant_id: string;
  provider: string;
  fields: string[];
  sealed: string;
  created_at: Date;
  updated_at: Date;
}

export class ProviderCredentials {
  private readonly cache = new Map<string, { at: number; value: Record<string, string> | null }>();
  /** Bumped on every invalidation: a read that began before one does not fill the cache. */
  private generation = 0;
  constructor(private readonly opts: { db: Db; clock: Clock; secrets: SecretBox; urlPolicy: UrlPolicy; changes?: ChangeFeed }) {
    opts.changes?.on('provider_credentials', (key) => this.forget(key));
  }

  private forget(key: string | undefined): void {
    this.generation++;
    if (key === undefined) this.cache.clear();
    else this.cache.delete(key);
  }

  /**
   * Checks the fields against what the adapter declares and every URL against the outbound policy
   * (no loopback, private or metadata address, no credentials in it...: adapters/url-guard.ts),
   * seals and stores them (replacing any). Calls are checked again when made (DNS may change).
   */
  async set(trx: Trx, tenantId: string, adapter: PaymentAdapter, values: Record<string, string>, actor: string): Promise<CredentialRow> {
    const declared = new Map(adapter.credentialFields.map((f) => [f.name, f]));
    const unknown = Object.keys(values).filter((k) => !declared.has(k));
    const missing = adapter.credentialFields.filter((f) => !f.optional && !values[f.name]).map((f) => f.name);
    if (unknown.length || missing.length) {
      throw new FeegateError('FEEGATE_ERR_VALIDATION', `Credentials for ${adapter.id} need ${adapter.credentialFields.map((f) => f.name).join(', ')}`, {
        ...(unknown.length ? { unknown } : {}),
        ...(missing.length ? { missing } : {}),
      });
    }
    for (const [name, value] of Object.entries(values)) if (isUrlField(name)) assertUrlAllowed(this.opts.urlPolicy, name, value);
    const now = this.opts.clock.now();
    const row = {
      tenant_id: tenantId,
      provider: adapter.id,
      fields: Object.keys(values).sort(),
      sealed: this.opts.secrets.seal(JSON.stringify(values), purpose(tenantId, adapter.id)),
      created_at: now,
      updated_at: now,
    };
    const [saved] = (await trx('provider_credentials')
      .insert(row)
      .onConflict(['tenant_id', 'provider'])
      .merge(['fields', 'sealed', 'updated_at'])
      .returning('*')) as CredentialRow[];
    await appendAudit(trx, this.opts.clock, {
      tenantId,
      actor,
      action: 'provider_credentials.set',
      entityType: 'provider_credentials',
      entityId: adapter.id,
      data: { fields: row.fields },
    });
    await publishChange(trx, 'provider_credentials', `${tenantId}:${adapter.id}`);
    this.forget(`${tenantId}:${adapter.id}`);
    return saved!;
  }

  async remove(trx: Trx, tenantId: string, provider: string, actor: string): Promise<boolean> {
    const n = await trx('provider_credentials').where({ tenant_id: tenantId, provider }).del();
    if (n) {
      await appendAudit(trx, this.opts.clock, {
        tenantId,
        actor,
        action: 'provider_credentials.removed',
        entityType: 'provider_credentials',
        entityId: provider,
        data: {},
      });
    }
    await publishChange(trx, 'provider_credentials', `${tenantId}:${provider}`);
    this.forget(`${tenantId}:${provider}`);
    return n > 0;
  }

  /** The unit's credentials for a provider, or null. */
  async get(tenantId: string, provider: string): Promise<Record<string, string> | null> {
    const key = `${tenantId}:${provider}`;
    const live = this.opts.changes?.live ?? false;
    const hit = live ? this.cache.get(key) : undefined;
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.value;
    const generation = this.generation;
    const row = (await this.opts.db('provider_credentials').where({ tenant_id: tenantId, provider }).first('sealed')) as { sealed: string } | undefined;
    const value = row ? (JSON.parse(this.opts.secrets.open(row.sealed, purpose(tenantId, provider))) as Record<string, string>) : null;
    if (live && generation === this.generation) this.cache.set(key, { at: Date.now(), value });
    return value;
  }

  async list(tenantId: string): Promise<CredentialRow[]> {
    return (await this.opts.db('provider_credentials').where({ tenant_id: tenantId }).orderBy('provider')) as CredentialRow[];
  }

  /** What an admin may see of a stored row. */
  async describe(tenantId: string, row: CredentialRow, adapter: PaymentAdapter | undefined) {
    return credentialsJson(row, (await this.get(tenantId, row.provider)) ?? {}, adapter);
  }
}

/** The API form: non-secret values, and only "(set)" for secrets (all of them if the adapter is gone). */
export function credentialsJson(
  row: Pick<CredentialRow, 'provider' | 'fields' | 'updated_at'>,
  values: Record<string, string>,
  adapter: PaymentAdapter | undefined,
) {
  const secret = new Set(adapter?.credentialFields.filter((f) => f.secret).map((f) => f.name) ?? row.fields);
  return {
    object: 'provider_credentials' as const,
    provider: row.provider,
    fields: Object.fromEntries(row.fields.map((f) => [f, secret.has(f) ? '(set)' : (values[f] ?? '')])),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}
