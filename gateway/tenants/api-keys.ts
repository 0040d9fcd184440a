/**
 * API keys: random, shown once, stored as SHA-256 (the keys carry 192 bits of entropy, so a slow
 * hash adds nothing), prefixed `fg_live_` / `fg_test_`, bound to one tenant and one role.
 */
import crypto from 'node:crypto';
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import { appendAudit } from '../audit/audit-log.js';
import { FeegateError } from '../errors.js';
import { publishChange, type ChangeFeed } from '../db/notify.js';

export const ROLES = ['integration', 'finance', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export type KeyMode = 'live' | 'test';
/** integration < finance < admin: a key never grants more than its own rank. */
export const roleRank = (role: Role): number => ROLES.indexOf(role);

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
  args: {
    tenantId: string;
    role: Role;
    mode: KeyMode;
    label?: string;
    actor: string;
    /** The API key making this one (absent for operators: CLI, demo). */
    creator?: { keyId: string };
  },
): Promise<{ key: ApiKeyRecord; secret: string }> {
  if (args.creator) {
    // Read under a row lock, not from the request's principal: a key revoked a moment ago on
    // another process (or demoted) cannot mint a successor, and a revocation waits for this mint.
    const creator = (await trx('api_keys').where({ id: args.creator.keyId, tenant_id: args.tenantId }).forUpdate().first('role', 'revoked_at')) as
      { role: Role; revoked_at: Date | null } | undefined;
    if (!creator || creator.revoked_at !== null) throw new FeegateError('FEEGATE_ERR_AUTH_REVOKED');
    if (roleRank(args.role) > roleRank(creator.role)) {
      throw new FeegateError('FEEGATE_ERR_FORBIDDEN_ROLE', `A ${creator.role} key cannot create a ${args.role} key`, {
        role: args.role,
        creator_role: creator.role,
      });
    }
  }
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
  // Every process drops its cached principals when this commits (revocations are rare: drop all).
  await publishChange(trx, 'api_keys');
  return key;
}

/**
 * Looks a presented key up. Results are cached per process so the hot path skips one query per
 * request; a revocation is published on commit (db/notify.ts) and every process drops the key at
 * once. While the change feed is down nothing is served from the cache; `ttlMs` is the last
 * safety net for a feed that is silently dead.
 */
export class ApiKeyResolver {
  private cache = new Map<string, { at: number; principal: ApiKeyPrincipal | null }>();
  /** Bumped on every invalidation: a lookup that began before one does not fill the cache. */
  private generation = 0;
  constructor(
    private readonly db: Db,
    private readonly changes?: ChangeFeed,
    private readonly ttlMs = 5_000,
    private readonly maxEntries = 10_000,
  ) {
    changes?.on('api_keys', (hash) => {
      this.generation++;
      if (hash === undefined) this.cache.clear();
      else this.cache.delete(hash);
    });
  }

  async resolve(secret: string): Promise<ApiKeyPrincipal | null> {
    const hash = hashKey(secret);
    const now = Date.now();
    const live = this.changes?.live ?? false;
    const hit = live ? this.cache.get(hash) : undefined;
    if (hit && now - hit.at < this.ttlMs) return hit.principal;
    const generation = this.generation;
    const row = (await this.db('api_keys').where({ key_hash: hash }).first('id', 'tenant_id', 'role', 'mode', 'revoked_at')) as
      { id: string; tenant_id: string; role: Role; mode: KeyMode; revoked_at: Date | null } | undefined;
    const principal = row ? { keyId: row.id, tenantId: row.tenant_id, role: row.role, mode: row.mode, revoked: row.revoked_at !== null } : null;
    if (!live || generation !== this.generation) return principal;
    if (this.cache.size >= this.maxEntries) this.cache.clear();
    this.cache.set(hash, { at: now, principal });
    return principal;
  }

  /** Forget everything now (this process; the change feed tells the others). */
  invalidate(): void {
    this.generation++;
    this.cache.clear();
  }
}
