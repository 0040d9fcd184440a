/**
 * API keys: random, shown once, stored as SHA-256 (the keys carry 192 bits of entropy, so a slow
 * hash adds nothing), prefixed `fg_live_` / `fg_test_`, bound to one tenant and one role.
 */
import crypto from 'node:crypto';
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import { appendAudit } from '../audit/audit-log.js';

export const ROLES = ['integration', 'finance', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export type KeyMode = 'live' | 'test';

export interface ApiKeyPrincipal {
  keyId: string;
  tenantId: string;
  role: Role;
  mode: KeyMode;
  revoked: boolean;
}

export interface ApiKeyRecord {
  id: string;
  tenant_id: string;
  role: Role;
  mode: KeyMode;
  prefix: string;
  label: string;
  created_at: Date;
  revoked_at: Date | null;
}

export function hashKey(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function generateKeySecret(mode: KeyMode): string {
  return `fg_${mode}_${crypto.randomBytes(24).toString('base64url')}`;
}

export async function createApiKey(
  trx: Trx,
  clock: Clock,
  args: { tenantId: string; role: Role; mode: KeyMode; label?: string; actor: string },
): Promise<{ key: ApiKeyRecord; secret: string }> {
  const secret = generateKeySecret(args.mode);
  const [key] = (await trx('api_keys')
    .insert({
      tenant_id: args.tenantId,
      role: args.role,
      mode: args.mode,
      prefix: secret.slice(0, 12),
      key_hash: hashKey(secret),
      label: args.label ?? '',
      created_at: clock.now(),
    })
    .returning('*')) as ApiKeyRecord[];
  await appendAudit(trx, clock, {
    tenantId: args.tenantId,
    actor: args.actor,
    action: 'api_key.created',
    entityType: 'api_key',
    entityId: key!.id,
    data: { role: args.role, mode: args.mode, label: args.label ?? '' },
  });
  return { key: key!, secret };
}

export async function revokeApiKey(trx: Trx, clock: Clock, tenantId: string, keyId: string, actor: string): Promise<ApiKeyRecord | undefined> {
  const [key] = (await trx('api_keys')
    .where({ id: keyId, tenant_id: tenantId })
    .update({ revoked_at: trx.raw('coalesce(revoked_at, ?)', [clock.now()]) })
    .returning('*')) as ApiKeyRecord[];
  if (!key) return undefined;
  await appendAudit(trx, clock, { tenantId, actor, action: 'api_key.revoked', entityType: 'api_key', entityId: keyId, data: {} });
  return key;
}

/**
 * Looks a presented key up. Results are cached for a few seconds per process: a revocation takes
 * effect everywhere within `ttlMs` (documented), and the hot path skips one query per request.
 */
export class ApiKeyResolver {
  private cache = new Map<string, { at: number; principal: ApiKeyPrincipal | null }>();
  constructor(
    private readonly db: Db,
    private readonly ttlMs = 5_000,
    private readonly maxEntries = 10_000,
  ) {}

  async resolve(secret: string): Promise<ApiKeyPrincipal | null> {
    const hash = hashKey(secret);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && now - hit.at < this.ttlMs) return hit.principal;
    const row = (await this.db('api_keys').where({ key_hash: hash }).first('id', 'tenant_id', 'role', 'mode', 'revoked_at')) as
      | { id: string; tenant_id: string; role: Role; mode: KeyMode; revoked_at: Date | null }
      | undefined;
    const principal = row
      ? { keyId: row.id, tenantId: row.tenant_id, role: row.role, mode: row.mode, revoked: row.revoked_at !== null }
      : null;
    if (this.cache.size >= this.maxEntries) this.cache.clear();
    this.cache.set(hash, { at: now, principal });
    return principal;
  }

  /** Forget everything (called after a revocation made through this process). */
  invalidate(): void {
    this.cache.clear();
  }
}
