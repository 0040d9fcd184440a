/**
 * The knex factory: PostgreSQL (pg) when a URL is given, embedded PGlite otherwise. One set of
 * migrations, one SQL dialect. PGlite has ONE connection: never await outside I/O inside a
 * transaction, and never use the outer knex inside knex.transaction(cb).
 */
import fs from 'node:fs';
import knexPkg, { type Knex } from 'knex';
import { PGlite } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import { migrationSource } from './migrations/index.js';
import { lockDataDir } from './data-dir-lock.js';

// node-postgres turns a SQL date into a local-midnight Date; keep it the calendar date it is.
pg.types.setTypeParser(1082, (v: string) => v);

export type Db = Knex;
export type Trx = Knex.Transaction;

/**
 * knex-pglite 0.14 labels a delete "DEL", so knex returns the raw result instead of the row count
 * for .del(); name it DELETE as node-postgres does.
 */
type ResponseProcessor = { processResponse(obj: { method?: string }, runner: unknown): unknown };
class PgLiteClient extends (ClientPgLite as unknown as { new (config: Knex.Config): ResponseProcessor }) {
  override processResponse(obj: { method?: string }, runner: unknown): unknown {
    return super.processResponse(obj.method === 'del' ? { ...obj, method: 'delete' } : obj, runner);
  }
}

const makeKnex: typeof knexPkg = (knexPkg as unknown as { knex?: typeof knexPkg }).knex ?? knexPkg;

export interface DbOptions {
  /** postgres://… ; when absent, PGlite. */
  url?: string;
  /** PGlite directory; undefined or 'memory://' for an in-memory database. */
  pgliteDir?: string;
  poolMax?: number;
  /** An existing PGlite instance (tests load a migrated template into one). */
  pglite?: PGlite;
}

export function createDb(opts: DbOptions): Db {
  if (opts.url) {
    return makeKnex({
      client: 'pg',
      connection: opts.url,
      pool: { min: 0, max: opts.poolMax ?? 20 },
      acquireConnectionTimeout: 10_000,
    });
  }
  const dir = opts.pgliteDir && opts.pgliteDir !== 'memory://' ? opts.pgliteDir : undefined;
  if (dir) fs.mkdirSync(dir, { recursive: true });
  const release = dir ? lockDataDir(dir) : () => {};
  // int8 comes back as number/BigInt here and as string from node-postgres: every bigint column is
  // read through money.vnd() or Number(), never passed through raw.
  const pglite = opts.pglite ?? new PGlite(dir);
  const knex = makeKnex({
    client: PgLiteClient as unknown as typeof Knex.Client,
    dialect: 'postgres',
    connection: () => ({ pglite }) as unknown as Knex.StaticConnectionConfig,
    acquireConnectionTimeout: 30_000,
  } as Knex.Config);
  // knex.destroy() ends in client.destroy(): release the directory there (knex.destroy itself is read-only).
  const client = knex.client as { destroy: (cb?: unknown) => Promise<void> };
  const destroy = client.destroy.bind(client);
  client.destroy = async (cb?: unknown) => {
    try {
      await destroy(cb);
      if (!opts.pglite) await pglite.close().catch(() => {});
    } finally {
      release();
    }
  };
  return knex;
}

export async function migrate(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}
