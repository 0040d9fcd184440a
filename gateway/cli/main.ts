/**
 * The feegate command line (`npm run cli -- …`, or the `feegate` bin): migrations, tenants, API
 * keys, the audit chain, the error table. It talks to the database named by DATABASE_URL, or to the
 * embedded one under FEEGATE_DATA_DIR, exactly as the server would.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config.js';
import { createDb, migrate, type Db } from '../db/knex.js';
import { systemClock, type Clock } from '../clock.js';
import { ERRORS } from '../errors.js';
import { createTenant, findTenant, listTenants } from '../tenants/tenants.js';
import { createApiKey, revokeApiKey, ROLES, type Role } from '../tenants/api-keys.js';
import { sealAudit, verifyAudit } from '../audit/audit-log.js';
import { deadRows, requeue } from '../outbox/outbox.js';
import fs from 'node:fs';
import type { Config } from '../config.js';
import { SecretBox } from '../secrets/secret-box.js';
import { withMasterKey } from '../secrets/dev-master-key.js';
import { CertStore, certJson } from '../../certs/store.js';
import { readSigningMaterial } from '../../certs/pkcs12.js';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

const consoleIo: CliIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

function role(v: string): Role {
  if (!(ROLES as readonly string[]).includes(v)) throw new InvalidArgumentError(`role must be one of ${ROLES.join(', ')}`);
  return v as Role;
}

async function tenantOrFail(db: Db, ref: string) {
  const t = await findTenant(db, ref);
  if (!t) throw new Error(`no tenant "${ref}"`);
  return t;
}

/** Runs one command line; returns the exit code. `db` may be given (tests); otherwise opened from the environment. */
export async function runCli(argv: string[], opts: { db?: Db; clock?: Clock; io?: CliIo; config?: Config } = {}): Promise<number> {
  const io = opts.io ?? consoleIo;
  const clock = opts.clock ?? systemClock;
  let db = opts.db;
  let code = 0;
  const open = async (): Promise<Db> => {
    if (!db) {
      const config = loadConfig();
      db = createDb({ url: config.databaseUrl, pgliteDir: path.join(config.dataDir, 'pglite'), poolMax: 4 });
      await migrate(db);
    }
    return db;
  };

  const program = new Command('feegate')
    .description('feegate: payment and e-receipt gateway for Vietnamese public fees')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  program
    .command('migrate')
    .description('apply database migrations')
    .action(async () => {
      const d = db ?? createDb({ url: loadConfig().databaseUrl, pgliteDir: path.join(loadConfig().dataDir, 'pglite'), poolMax: 2 });
      db = d;
      const applied = await migrate(d);
      io.out(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
    });

  const tenants = program.command('tenants').description('agencies and schools');
  tenants
    .command('create')
    .requiredOption('--code <code>', 'short unique code, e.g. phuong-dich-vong')
    .requiredOption('--name <name>', 'legal name')
    .requiredOption('--tax-code <mst>', 'tax code (MST), 10 or 13 digits')
    .option('--kind <kind>', 'agency or school', 'agency')
    .option('--address <address>', 'address', '')
    .option('--budget-code <code>', 'budget relationship code (mã ĐVQHNS)')
    .action(async (o: { code: string; name: string; taxCode: string; kind: string; address: string; budgetCode?: string }) => {
      if (o.kind !== 'agency' && o.kind !== 'school') throw new InvalidArgumentError('kind must be agency or school');
      const d = await open();
      const t = await d.transaction((trx) =>
        createTenant(
          trx,
          clock,
          { code: o.code, name: o.name, taxCode: o.taxCode, kind: o.kind as 'agency', address: o.address, budgetCode: o.budgetCode },
          'cli',
        ),
      );
      io.out(`tenant ${t.code} created: ${t.id}`);
    });
  tenants.command('list').action(async () => {
    const d = await open();
    for (const t of await listTenants(d)) io.out(`${t.id}  ${t.code}  ${t.kind}  MST ${t.tax_code}  ${t.name}`);
  });

  const keys = program.command('keys').description('API keys');
  keys
    .command('create')
    .requiredOption('--tenant <code|id>')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`, role)
    .option('--mode <mode>', 'live or test', 'test')
    .option('--label <label>', 'what the key is for', '')
    .action(async (o: { tenant: string; role: Role; mode: string; label: string }) => {
      if (o.mode !== 'live' && o.mode !== 'test') throw new InvalidArgumentError('mode must be live or test');
      const d = await open();
      const t = await tenantOrFail(d, o.tenant);
      const { key, secret } = await d.transaction((trx) =>
        createApiKey(trx, clock, { tenantId: t.id, role: o.role, mode: o.mode as 'test', label: o.label, actor: 'cli' }),
      );
      io.out(`key ${key.id} (${key.role}, ${key.mode}) for ${t.code}:`);
      io.out(secret);
      io.out('This secret is shown once. Store it now.');
    });
  keys
    .command('list')
    .requiredOption('--tenant <code|id>')
    .action(async (o: { tenant: string }) => {
      const d = await open();
      const t = await tenantOrFail(d, o.tenant);
      const rows = (await d('api_keys').where({ tenant_id: t.id }).orderBy('created_at')) as {
        id: string;
        prefix: string;
        role: string;
        mode: string;
        label: string;
        revoked_at: Date | null;
      }[];
      for (const k of rows) io.out(`${k.id}  ${k.prefix}…  ${k.role}  ${k.mode}  ${k.revoked_at ? 'REVOKED' : 'active'}  ${k.label}`);
    });
  keys
    .command('revoke')
    .requiredOption('--tenant <code|id>')
    .requiredOption('--id <keyId>')
    .action(async (o: { tenant: string; id: string }) => {
      const d = await open();
      const t = await tenantOrFail(d, o.tenant);
      const k = await d.transaction((trx) => revokeApiKey(trx, clock, t.id, o.id, 'cli'));
      if (!k) throw new Error(`no key ${o.id} for ${t.code}`);
      io.out(`key ${k.id} revoked`);
    });

  const audit = program.command('audit').description('the hash-chained audit log');
  audit
    .command('seal')
    .option('--tenant <code|id>')
    .action(async (o: { tenant?: string }) => {
      const d = await open();
      const n = await sealAudit(d, o.tenant ? { tenantId: (await tenantOrFail(d, o.tenant)).id } : {});
      io.out(`sealed ${n} record(s)`);
    });
  audit
    .command('verify')
    .description('walk each chain from the start; exit 1 and name the first broken link if one is found')
    .option('--tenant <code|id>')
    .action(async (o: { tenant?: string }) => {
      const d = await open();
      const list = o.tenant ? [await tenantOrFail(d, o.tenant)] : await listTenants(d);
      for (const t of list) {
        const r = await verifyAudit(d, t.id);
        if (r.ok) io.out(`${t.code}: OK, ${r.sealed} sealed record(s), ${r.unsealed} not yet sealed`);
        else {
          code = 1;
          io.out(`${t.code}: BROKEN at seq ${r.broken!.seq} (audit_log.id ${r.broken!.id}): ${r.broken!.reason}`);
        }
      }
    });

  const outbox = program.command('outbox').description('the transactional outbox');
  outbox
    .command('dead')
    .description('rows that kept failing, with their last error')
    .option('--tenant <code|id>')
    .action(async (o: { tenant?: string }) => {
      const d = await open();
      const rows = await deadRows(d, o.tenant ? (await tenantOrFail(d, o.tenant)).id : null);
      if (rows.length === 0) io.out('no dead rows');
      for (const r of rows) io.out(`${r.id}  ${r.kind}  attempts ${r.attempts}  ${JSON.stringify(r.payload)}  last error: ${r.last_error ?? ''}`);
    });
  outbox
    .command('requeue')
    .argument('<id>', 'outbox row id')
    .action(async (id: string) => {
      const d = await open();
      const row = await requeue(d, clock, id, null);
      if (!row) throw new Error(`no dead outbox row ${id}`);
      io.out(`outbox row ${row.id} requeued`);
    });

  const certsCmd = program.command('certs').description('signing certificates of the units (e-receipts)');
  const store = async () => {
    const d = await open();
    const config = withMasterKey(opts.config ?? loadConfig());
    if (!config.masterKey) throw new Error('FEEGATE_MASTER_KEY is required to store private keys');
    return { d, config, certs: new CertStore({ db: d, clock, config, secrets: new SecretBox(config.masterKey) }) };
  };
  certsCmd
    .command('import')
    .description("import a signing certificate and key (.p12/.pfx, or PEM); it becomes the unit's active certificate")
    .requiredOption('--tenant <code|id>')
    .argument('<file>', 'PKCS#12 (.p12/.pfx) or PEM file')
    .option('--password-env <name>', 'environment variable holding the password', 'FEEGATE_CERT_PASSWORD')
    .action(async (file: string, o: { tenant: string; passwordEnv: string }) => {
      const { d, certs } = await store();
      const tenant = await tenantOrFail(d, o.tenant);
      const material = readSigningMaterial(fs.readFileSync(file), process.env[o.passwordEnv] ?? '');
      const source = fs.readFileSync(file).toString('utf8').includes('-----BEGIN') ? 'pem' : 'pkcs12';
      const row = await d.transaction((trx) => certs.add(trx, tenant, material, source, 'cli'));
      io.out(`imported ${row.subject} (serial ${row.serial}, valid until ${new Date(row.not_after).toISOString()}); active for ${tenant.code}`);
    });
  const listCerts = async (o: { tenant?: string }) => {
    const { d, config, certs } = await store();
    const rows = await certs.list(d, o.tenant ? (await tenantOrFail(d, o.tenant)).id : undefined);
    const out = rows.map((r) => certJson(r, clock.now(), config.certWarnDays));
    for (const c of out) {
      const warn = c.status === 'active' && c.expiring_soon ? `  WARNING: expires in ${c.days_left} days` : '';
      io.out(`${c.status.padEnd(7)} ${c.subject}  serial ${c.serial}  until ${c.not_after}${warn}`);
    }
    if (!out.length) io.out('no signing certificates');
    return out;
  };
  certsCmd
    .command('list')
    .option('--tenant <code|id>')
    .action(async (o: { tenant?: string }) => {
      await listCerts(o);
    });
  certsCmd
    .command('check')
    .description('exit 1 when an active certificate expires within CERT_WARN_DAYS (for monitoring)')
    .option('--tenant <code|id>')
    .action(async (o: { tenant?: string }) => {
      const soon = (await listCerts(o)).filter((c) => c.status === 'active' && c.expiring_soon);
      if (soon.length) code = 1;
    });

  program
    .command('errors')
    .description('print the error code table (Markdown)')
    .action(() => {
      io.out('| code | HTTP | meaning |\n| --- | --- | --- |');
      for (const [c, e] of Object.entries(ERRORS)) io.out(`| \`${c}\` | ${e.status} | ${e.message} |`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') code = 0;
    else if (e.code?.startsWith('commander.')) code = e.exitCode ?? 2;
    else {
      io.err(`error: ${e.message ?? String(err)}`);
      code = 1;
    }
  } finally {
    if (db && !opts.db) await db.destroy();
  }
  return code;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runCli(process.argv.slice(2)).then((c) => process.exit(c));
}
