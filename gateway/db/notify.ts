/**
 * Cache invalidation across processes: PostgreSQL LISTEN/NOTIFY on one channel.
 *
 * A change that other processes cache (an API key revoked, a unit's provider credentials replaced)
 * is published with `publishChange(trx, …)` inside the transaction that makes it: PostgreSQL
 * delivers a NOTIFY only when that transaction commits, never when it rolls back, so no process
 * drops its cache before the change is visible, and none misses it. Every process (this one
 * included) holds one LISTEN connection (`ChangeFeed`) and drops the matching cache entries.
 *
 * While the LISTEN connection is down, notifications are lost, so `live` is false and caches serve
 * nothing from memory (each lookup goes to the database) until it is back; on every (re)connect
 * the caches are dropped whole. The caches' own TTL stays as a last safety net (a connection that
 * is silently dead until TCP keep-alive or the heartbeat notices).
 *
 * On embedded PGlite there is one process; PGlite's own LISTEN does the same in-process.
 */
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import type { Db, Trx } from './knex.js';

export const CHANGES_CHANNEL = 'feegate_changes';
export type ChangeTopic = 'api_keys' | 'provider_credentials';
/** `key` undefined: drop everything under the topic. */
export type ChangeHandler = (key: string | undefined) => void;

interface Logger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Announces a committed change to every process. Call inside the transaction that makes it. */
export async function publishChange(trx: Trx | Db, topic: ChangeTopic, key?: string): Promise<void> {
  await trx.raw('select pg_notify(?, ?)', [CHANGES_CHANNEL, JSON.stringify(key === undefined ? { topic } : { topic, key })]);
}

export class ChangeFeed {
  private readonly handlers = new Map<ChangeTopic, Set<ChangeHandler>>();
  private client: pg.Client | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private attempt = 0;
  private pgConfig: pg.ClientConfig | undefined;
  private closed = false;
  /** True while notifications are being received: only then may a cache answer from memory. */
  live = false;

  /** PostgreSQL: one LISTEN connection of our own (to `url`, or where `db` connects); PGlite: its own LISTEN. */
  constructor(private readonly opts: { db: Db; url?: string; log?: Logger; heartbeatMs?: number }) {}

  on(topic: ChangeTopic, handler: ChangeHandler): void {
    let set = this.handlers.get(topic);
    if (!set) this.handlers.set(topic, (set = new Set()));
    set.add(handler);
  }

  /** Connects (and keeps reconnecting in the background); resolves after the first attempt. */
  async start(): Promise<void> {
    this.pgConfig = this.opts.url ? { connectionString: this.opts.url } : pgConfigOf(this.opts.db);
    if (this.pgConfig) return this.connect();
    const pglite = pgliteOf(this.opts.db);
    if (!pglite) return; // neither: no feed, caches never live (always read through)
    this.unlisten = await pglite.listen(CHANGES_CHANNEL, (payload) => this.deliver(payload));
    this.live = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.live = false;
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    await this.unlisten?.().catch(() => {});
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ ...this.pgConfig, keepAlive: true, application_name: 'feegate-listen' });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      this.lost(client, err);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (n) => {
      if (n.channel === CHANGES_CHANNEL) this.deliver(n.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (err) {
      onLost(err as Error);
      await client.end().catch(() => {});
      return;
    }
    if (this.closed || lost) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.attempt = 0;
    // Anything published while we were not listening is lost: forget everything, then trust the feed.
    this.dropAll();
    this.live = true;
    if (this.opts.log && this.retry !== undefined) this.opts.log.info({}, 'change feed reconnected');
    this.retry = undefined;
    clearInterval(this.heartbeat);
    // A half-open TCP connection sends no 'end': a query that fails or hangs tells us.
    const every = this.opts.heartbeatMs ?? 15_000;
    this.heartbeat = setInterval(() => {
      const timer = setTimeout(() => client.end().catch(() => {}), every);
      client.query('select 1').then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      );
    }, every);
    this.heartbeat.unref();
  }

  private lost(client: pg.Client, err: Error | undefined): void {
    if (this.client === client) this.client = undefined;
    clearInterval(this.heartbeat);
    this.live = false;
    this.dropAll();
    if (this.closed) return;
    this.attempt++;
    const delay = Math.min(30_000, 250 * 2 ** Math.min(this.attempt - 1, 10)) * (0.8 + Math.random() * 0.4);
    this.opts.log?.warn(
      { err: err?.message, attempt: this.attempt, retryMs: Math.round(delay) },
      'change feed (LISTEN) connection lost; caches bypassed until it is back',
    );
    this.retry = setTimeout(() => void this.connect(), delay);
    this.retry.unref();
  }

  private deliver(payload: string): void {
    let msg: { topic?: ChangeTopic; key?: string };
    try {
      msg = JSON.parse(payload) as typeof msg;
    } catch {
      return;
    }
    for (const h of (msg.topic && this.handlers.get(msg.topic)) || []) h(typeof msg.key === 'string' ? msg.key : undefined);
  }

  private dropAll(): void {
    for (const set of this.handlers.values()) for (const h of set) h(undefined);
  }
}

/** Where a node-postgres knex connects (knex keeps a URL parsed into an object); undefined for PGlite. */
function pgConfigOf(db: Db): pg.ClientConfig | undefined {
  const config = (db.client as { config?: { client?: unknown; connection?: unknown } }).config;
  if (config?.client !== 'pg') return undefined;
  const conn = config.connection;
  if (typeof conn === 'string') return { connectionString: conn };
  return conn && typeof conn === 'object' ? { ...(conn as pg.ClientConfig) } : undefined;
}

/** The PGlite instance behind a knex made by createDb (undefined for node-postgres). */
function pgliteOf(db: Db): PGlite | undefined {
  const conn = (db.client as { config?: { connection?: unknown } }).config?.connection;
  if (typeof conn !== 'function') return undefined;
  const c = (conn as () => { pglite?: PGlite })();
  return c?.pglite && typeof c.pglite.listen === 'function' ? c.pglite : undefined;
}
