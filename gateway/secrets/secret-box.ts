/**
 * Secrets at rest (webhook signing secrets, provider credentials, private keys): AES-256-GCM under
 * the master key (FEEGATE_MASTER_KEY, 32 bytes as base64 or hex). Format: `v1.<iv>.<tag>.<ciphertext>`
 * in base64url. The AAD binds a secret to what it is for, so one cannot be swapped for another.
 */
import crypto from 'node:crypto';

export class SecretBox {
  private readonly key: Buffer;
  constructor(masterKey: string | Buffer) {
    const key = typeof masterKey === 'string' ? parseKey(masterKey) : masterKey;
    if (key.length !== 32) throw new Error('the master key must be 32 bytes (base64 or hex)');
    this.key = key;
  }

  seal(plaintext: string, purpose: string): string {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(purpose, 'utf8'));
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return ['v1', iv, c.getAuthTag(), ct].map((x) => (typeof x === 'string' ? x : x.toString('base64url'))).join('.');
  }

  open(sealed: string, purpose: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('not a sealed secret');
    const d = crypto.createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(purpose, 'utf8'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}

export function parseKey(s: string): Buffer {
  const t = s.trim();
  return /^[0-9a-f]{64}$/i.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
}

export function generateMasterKey(): string {
  return crypto.randomBytes(32).toString('base64');
}
