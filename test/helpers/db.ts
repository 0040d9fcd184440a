/**
 * Every database test runs on both engines: embedded PGlite and a real PostgreSQL.
 * - PGlite: an in-memory instance loaded from a migrated template (built once, cached on disk).
 * - PostgreSQL: a fresh database per test, dropped afterwards. PG_TEST_URL (default
 *   postgres://postgres@127.0.0.1:5432/postgres) names the server. Without one, the PostgreSQL runs
 *   are skipped and say so; with CI=true a missing PostgreSQL fails the run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { createDb, migrate, type Db } from '../../gateway/db/knex.js';
import { loadOrCreateDevCa } from '../../certs/dev-ca.js';
import { verifyReceiptXml } from '../../receipts/verify.js';
import { xmlsecMissing, xmlsecVerify } from './xmlsec.js';
import { TEST_DEV_CA_DIR } from './app.js';

export type Engine = 'pglite' | 'postgres';

export const PG_URL = process.env.PG_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const migrationsDir = path.resolve(import.meta.dirname, '../../gateway/db/migrations');

function migrationsHash(): string {
  const h = crypto.createHash('sha256');
  for (const f of fs.readdirSync(migrationsDir).sort()) h.update(f).update(fs.readFileSync(path.join(migrationsDir, f)));
  return h.digest('hex').slice(0, 16);
}

let pgReachable: Promise<boolean> | undefined;
export function postgresAvailable(): Promise<boolean> {
  pgReachable ??= (async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await c.end().catch(() => {});
    }
  })();
  return pgReachable;
}

async function pgliteTemplate(): Promise<Blob> {
  const file = path.join(os.tmpdir(), `feegate-pglite-${migrationsHash()}.tar.gz`);
  if (fs.existsSync(file)) return new Blob([fs.readFileSync(file)], { type: 'application/x-gzip' });
  const pglite = new PGlite();
  const db = createDb({ pglite });
  await migrate(db);
  const dump = await pglite.dumpDataDir('gzip');
  await db.destroy();
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
  fs.renameSync(tmp, file); // atomic: parallel test processes never read half a file
  return new Blob([fs.readFileSync(file)], { type: 'application/x-gzip' });
}

export interface TestDb {
  db: Db;
  engine: Engine;
  /** For PostgreSQL: the database's URL (to start other processes on it). */
  url?: string;
}

export async function openTestDb(engine: Engine): Promise<TestDb & { close(): Promise<void> }> {
  if (engine === 'pglite') {
    const pglite = new PGlite({ loadDataDir: await pgliteTemplate() });
    const db = createDb({ pglite });
    await migrate(db); // no-op on the template; applies anything newer
    return { db, engine, close: () => db.destroy() };
  }
  const name = `feegate_test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  const db = createDb({ url: url.toString(), poolMax: 10 });
  await migrate(db);
  return {
    db,
    engine,
    url: url.toString(),
    close: async () => {
      await db.destroy();
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Every receipt a test leaves in its database must verify with xmlsec1 (independent) and with our
 * verifier, against the dev CA, as of its signing time. One assertion per test that made receipts.
 */
async function everyReceiptVerifies(t: Test, db: Db): Promise<void> {
  let rows: { id: string; xml: string; signing_time: string }[];
  try {
    const [{ present }] = (await db.raw(`SELECT to_regclass('receipts') IS NOT NULL AS present`)).rows as [{ present: boolean }];
    if (!present) return;
    rows = (await db('receipts').select('id', 'xml', 'signing_time')) as typeof rows;
  } catch {
    return; // the test closed its database itself
  }
  if (!rows.length) return;
  const anchors = [loadOrCreateDevCa(TEST_DEV_CA_DIR).certPem];
  const noXmlsec = xmlsecMissing();
  if (noXmlsec && process.env.CI === 'true') t.fail(`${noXmlsec} (CI=true: this is a failure, not a skip)`);
  else if (noXmlsec) t.comment(`xmlsec1 checks of ${rows.length} receipts skipped: ${noXmlsec}; our verifier still checks them`);
  const failed: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < rows.length) {
        const r = rows[next++]!;
        const sec = noXmlsec
          ? { ok: true, output: '' }
          : await xmlsecVerify(r.xml, { dataElement: 'DLBLai', trustedPems: anchors, verificationTime: r.signing_time });
        const own = verifyReceiptXml(r.xml, anchors);
        if (!sec.ok || !own.valid)
          failed.push(`${r.id}: xmlsec1 ${sec.ok ? 'ok' : sec.output.slice(-300)}; ours ${own.valid ? 'ok' : JSON.stringify(own.problems)}`);
      }
    }),
  );
  t.same(
    failed,
    [],
    `all ${rows.length} receipts this test produced verify ${noXmlsec ? 'with our verifier (xmlsec1 skipped)' : 'with xmlsec1 and with our verifier'}`,
  );
}

/** Runs `fn` as one subtest per engine, each on a fresh database. */
export function eachDb(title: string, fn: (t: Test, env: TestDb) => Promise<void>, opts: { engines?: Engine[] } = {}): void {
  for (const engine of opts.engines ?? (['pglite', 'postgres'] as Engine[])) {
    t.test(`${title} [${engine}]`, async (tt) => {
      if (engine === 'postgres' && !(await postgresAvailable())) {
        if (process.env.CI === 'true') {
          tt.fail(`PostgreSQL is not reachable at ${PG_URL} (CI=true: this is a failure, not a skip)`);
          return;
        }
        tt.plan(0, `skip: PostgreSQL not reachable at ${PG_URL}`);
        return;
      }
      const env = await openTestDb(engine);
      tt.teardown(() => env.close());
      await fn(tt, env);
      await everyReceiptVerifies(tt, env.db);
    });
  }
}

/**
 * Every table of the database, read from the catalog (so a table a migration adds tomorrow is
 * covered without touching this list), each with its row count and a hash of its full content:
 * "nothing was written" is this staying equal. knex's own bookkeeping tables are left out.
 */
export async function snapshot(db: Db): Promise<Record<string, number | string>> {
  const tables = (
    (await db.raw(`SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename NOT LIKE 'knex\\_%' ORDER BY tablename`))
      .rows as { tablename: string }[]
  ).map((r) => r.tablename);
  if (tables.length === 0) throw new Error('snapshot: no tables in the current schema');
  // One statement for all tables: a snapshot is one round trip, cheap enough to take after every request batch.
  const sql = tables
    .map(() => `SELECT ? AS t, count(*) AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS h FROM ?? AS x`)
    .join(' UNION ALL ');
  const rows = (
    await db.raw(
      sql,
      tables.flatMap((t) => [t, t]),
    )
  ).rows as { t: string; n: string | number; h: string }[];
  const out: Record<string, number | string> = {};
  for (const r of rows) {
    out[r.t] = Number(r.n);
    out[`${r.t} (content md5)`] = r.h;
  }
  return out;
}

/**
 * Seals the audit records of these tenants, waiting as the sealer does: a record is sealed only
 * once no transaction older than it is still open anywhere on the server (pg_snapshot_xmin), and
 * on a PostgreSQL shared by parallel test files some other file may hold one open for a while.
 * Returns how many records were sealed; gives up after 60 s.
 */
export async function sealSettled(db: Db, tenantIds: string[]): Promise<number> {
  const { sealAudit, verifyAudit } = await import('../../gateway/audit/audit-log.js');
  let sealed = 0;
  const deadline = Date.now() + 60_000;
  for (;;) {
    sealed += await sealAudit(db);
    const left = (await Promise.all(tenantIds.map((id) => verifyAudit(db, id)))).reduce((n, v) => n + v.unsealed, 0);
    if (left === 0 || Date.now() > deadline) return sealed;
    await new Promise((r) => setTimeout(r, 100));
  }
}
