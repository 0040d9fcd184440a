/**
 * Environment → typed configuration. Every variable the gateway reads is here and in the
 * README's configuration table; nothing else reads process.env.
 */
import fs from 'node:fs';
import path from 'node:path';
import { allowListEntryProblem } from '../adapters/url-guard.js';

/**
 * The project's root: the nearest folder above this file with feegate's package.json (the same
 * from gateway/ under tsx and from compiled JavaScript). The default data directory lives there,
 * so the CLI finds the server's data wherever it is run from.
 */
export function projectRoot(from = import.meta.dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      if ((JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'feegate') return dir;
    } catch {
      // no package.json here: look further up
    }
    if (path.dirname(dir) === dir) return process.cwd();
  }
}

export type Mode = 'development' | 'production';

export interface Config {
  mode: Mode;
  host: string;
  port: number;
  /** Base URL the outside world reaches us at (checkout redirects, callbacks, docs links). */
  publicUrl: string;
  /** postgres://… for PostgreSQL; undefined means embedded PGlite under dataDir. */
  databaseUrl?: string;
  databasePoolMax: number;
  dataDir: string;
  sandbox: boolean;
  /** Shared secret the sandbox provider signs with (dev value when unset). */
  sandboxSecret: string;
  logLevel: string;
  bodyLimit: number;
  rateLimitPerMinute: number;
  /** Per client IP, each public page route (receipt lookup /r/:code and its download). */
  publicRateLimitPerMinute: number;
  /** Per client IP, the public receipt verifier (POST /v1/receipts/verify): the costliest public route. */
  verifyRateLimitPerMinute: number;
  /** Worker threads verifying receipts off the event loop, and receipts that may wait for one. */
  verifyThreads: number;
  verifyQueue: number;
  /**
   * Which proxies to believe about the client address (X-Forwarded-For), so per-IP limits see the
   * client: false (default: the socket's peer is the client), true (trust every hop: only when
   * nothing can reach the gateway but the proxy), or the proxies' addresses/CIDRs (best). No hop
   * count: fastify cannot check the peer with one and ignores it (fails closed).
   */
  trustProxy: boolean | string[];
  /** Run background jobs (janitor, audit sealer) in this process. */
  jobs: boolean;
  /** Serve HTTP in this process; false (FEEGATE_HTTP=false, `npm run jobs`) makes a jobs-only process. */
  http: boolean;
  /** HTTP worker processes sharing the port (PostgreSQL only; PGlite is one process). */
  workers: number;
  /** How long a claimed Idempotency-Key stays locked before a retry may resume it. */
  idempotencyLockSeconds: number;
  /** Delay before a checkout with no answer is considered abandoned, when the bill has no due date. */
  checkoutTtlSeconds: number;
  /** FEEGATE_MASTER_KEY: encrypts secrets at rest. Development generates one under the data dir. */
  masterKey?: string;
  /** When the janitor asks the provider about a payment in flight: seconds after each check. */
  janitorScheduleSeconds: number[];
  /** How often background jobs wake up (ms). */
  jobIntervalMs: number;
  /** How long a worker holds an outbox row or a janitor check before another may take it over. */
  leaseSeconds: number;
  /** Webhook deliveries in flight at once in this process (their own lane, apart from receipts). */
  webhookConcurrency: number;
  /** Deliveries in flight at once to one endpoint, across every process; its other events wait unclaimed. */
  webhookEndpointConcurrency: number;
  /** A delivery with no complete answer by then is a failed attempt (retried on the backoff schedule). */
  webhookTimeoutMs: number;
  /** The sandbox provider's base URL when it runs as its own process (default: mounted here). */
  sandboxUrl?: string;
  /** FEEGATE_WORKERS > 1 in sandbox mode: the port the primary serves the simulators on (0: any free port). */
  sandboxPort: number;
  /** Development CA directory (default <dataDir>/dev-ca); never used in production. */
  devCaDir?: string;
  /** PEM bundle of trusted roots for signing certificates (the Vietnamese CAs an operator installs). */
  trustAnchorsFile?: string;
  /** Warn this many days before a signing certificate expires (/metrics, CLI, API). */
  certWarnDays: number;
  /** FEEGATE_METRICS_TOKEN: /metrics needs `Authorization: Bearer <token>` (at least 16 characters). */
  metricsToken?: string;
  /** FEEGATE_METRICS_LISTEN: serve /metrics on this address only (a second, metrics-only server). */
  metricsListen?: { host: string; port: number };
  /**
   * FEEGATE_ALLOWED_PRIVATE_HOSTS (comma-separated): host names, IP addresses or CIDR ranges that
   * webhooks and provider URLs may reach although they are not public (loopback, private, ...).
   * Empty by default: every such address is refused (adapters/url-guard.ts).
   */
  allowedPrivateHosts: string[];
}

const DEV_SANDBOX_SECRET = 'dev-only-sandbox-secret-not-for-production';

function int(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^[0-9]+$/.test(raw)) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return Number(raw);
}

function intList(env: NodeJS.ProcessEnv, name: string, dflt: number[]): number[] {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (!/^[0-9]+(,[0-9]+)*$/.test(raw)) throw new Error(`${name} must be comma-separated seconds, got "${raw}"`);
  return raw.split(',').map(Number);
}

/** TRUST_PROXY: true/false, or comma-separated proxy addresses / CIDRs (or loopback, linklocal, uniquelocal). */
function trustProxy(env: NodeJS.ProcessEnv): Config['trustProxy'] {
  const raw = (env.TRUST_PROXY ?? '').trim();
  if (raw === '' || /^(0|false|no|off)$/i.test(raw)) return false;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  const list = raw.split(',').map((s) => s.trim());
  if (list.some((s) => !/^[0-9A-Fa-f.:]+(\/[0-9]{1,3})?$|^(loopback|linklocal|uniquelocal)$/.test(s))) {
    throw new Error(`TRUST_PROXY must be true, false or comma-separated proxy addresses/CIDRs, got "${raw}"`);
  }
  return list;
}

function hostList(env: NodeJS.ProcessEnv, name: string): string[] {
  const list = (env[name] ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  for (const h of list) {
    const problem = allowListEntryProblem(h);
    if (problem) throw new Error(`${name}: ${problem}`);
  }
  return list;
}

function bool(env: NodeJS.ProcessEnv, name: string, dflt: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

/** `port`, `host:port` or `[v6]:port`; a bare port listens on 127.0.0.1 only. */
function listenAddress(env: NodeJS.ProcessEnv, name: string): { host: string; port: number } | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]:|([A-Za-z0-9.-]+):)?([0-9]{1,5})$/.exec(raw);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new Error(`${name} must be port, host:port or [ipv6]:port, got "${raw}"`);
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

function secretToken(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^[\x21-\x7e]{16,512}$/.test(raw)) throw new Error(`${name} must be 16 to 512 printable ASCII characters without spaces`);
  return raw;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const modeRaw = env.FEEGATE_MODE ?? 'development';
  if (modeRaw !== 'development' && modeRaw !== 'production') {
    throw new Error(`FEEGATE_MODE must be development or production, got "${modeRaw}"`);
  }
  const mode: Mode = modeRaw;
  const port = int(env, 'PORT', 3000);
  const host = env.HOST ?? '127.0.0.1';
  const config: Config = {
    mode,
    host,
    port,
    publicUrl: (env.PUBLIC_URL ?? `http://${host === '0.0.0.0' ? 'localhost' : host}:${port}`).replace(/\/$/, ''),
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolMax: int(env, 'DATABASE_POOL_MAX', 20),
    dataDir: env.FEEGATE_DATA_DIR ? path.resolve(env.FEEGATE_DATA_DIR) : path.join(projectRoot(), 'data'),
    sandbox: bool(env, 'FEEGATE_SANDBOX', mode === 'development'),
    sandboxSecret: env.FEEGATE_SANDBOX_SECRET ?? DEV_SANDBOX_SECRET,
    logLevel: env.LOG_LEVEL ?? 'info',
    bodyLimit: int(env, 'BODY_LIMIT_BYTES', 256 * 1024),
    rateLimitPerMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 6000),
    publicRateLimitPerMinute: int(env, 'PUBLIC_RATE_LIMIT_PER_MINUTE', 120),
    verifyRateLimitPerMinute: int(env, 'VERIFY_RATE_LIMIT_PER_MINUTE', 30),
    verifyThreads: Math.max(1, int(env, 'VERIFY_THREADS', 1)),
    verifyQueue: int(env, 'VERIFY_QUEUE', 16),
    trustProxy: trustProxy(env),
    jobs: bool(env, 'FEEGATE_JOBS', true),
    http: bool(env, 'FEEGATE_HTTP', true),
    workers: Math.max(1, int(env, 'FEEGATE_WORKERS', 1)),
    idempotencyLockSeconds: int(env, 'IDEMPOTENCY_LOCK_SECONDS', 60),
    checkoutTtlSeconds: int(env, 'CHECKOUT_TTL_SECONDS', 15 * 60),
    masterKey: env.FEEGATE_MASTER_KEY || undefined,
    janitorScheduleSeconds: intList(env, 'JANITOR_SCHEDULE_SECONDS', [60, 300, 300, 300, 300, 300, 3600, 86400]),
    jobIntervalMs: int(env, 'JOB_INTERVAL_MS', 1000),
    leaseSeconds: int(env, 'LEASE_SECONDS', 120),
    webhookConcurrency: Math.max(1, int(env, 'WEBHOOK_CONCURRENCY', 16)),
    webhookEndpointConcurrency: Math.max(1, int(env, 'WEBHOOK_ENDPOINT_CONCURRENCY', 2)),
    webhookTimeoutMs: Math.max(1, int(env, 'WEBHOOK_TIMEOUT_MS', 10_000)),
    sandboxUrl: env.FEEGATE_SANDBOX_URL || undefined,
    sandboxPort: int(env, 'FEEGATE_SANDBOX_PORT', 0),
    devCaDir: env.FEEGATE_DEV_CA_DIR || undefined,
    trustAnchorsFile: env.FEEGATE_TRUST_ANCHORS || undefined,
    certWarnDays: int(env, 'CERT_WARN_DAYS', 30),
    metricsToken: secretToken(env, 'FEEGATE_METRICS_TOKEN'),
    metricsListen: listenAddress(env, 'FEEGATE_METRICS_LISTEN'),
    allowedPrivateHosts: hostList(env, 'FEEGATE_ALLOWED_PRIVATE_HOSTS'),
    ...overrides,
  };
  validateConfig(config);
  return config;
}

/** Production refuses what only makes sense on a laptop. */
export function validateConfig(config: Config): void {
  if (config.workers > 1 && !config.databaseUrl) {
    throw new Error('FEEGATE_WORKERS > 1 needs DATABASE_URL: the embedded database belongs to one process');
  }
  if (config.mode === 'production') {
    if (config.sandbox) {
      throw new Error('FEEGATE_MODE=production refuses the sandbox provider: unset FEEGATE_SANDBOX');
    }
    if (!config.databaseUrl) {
      throw new Error('FEEGATE_MODE=production needs DATABASE_URL (PostgreSQL); the embedded database is for development');
    }
    if (!config.masterKey) {
      throw new Error('FEEGATE_MODE=production needs FEEGATE_MASTER_KEY (32 bytes, base64 or hex) to encrypt secrets at rest');
    }
  }
}
