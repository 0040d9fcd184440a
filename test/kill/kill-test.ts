/**
 * Kill test: the gateway on PostgreSQL, payments driven through the sandbox simulator (its own
 * process, so the provider survives), the gateway killed with SIGKILL again and again and
 * restarted; then janitor and outbox finish, and we check that nothing was lost or doubled:
 * - every order the simulator reports paid is `succeeded` exactly once, credited exactly once;
 *   every other order is not succeeded;
 * - the journal agrees with the payments; the audit chain verifies;
 * - one e-receipt per succeeded payment, none for others, numbered without gap or duplicate;
 * - no outbox row is pending or dead; every event was delivered at least once to the receiver.
 *
 * By hand: npm run kill-test -- --payments 500 --kills 10 --concurrency 8
 * The suite (test/kill.test.ts) runs it with a modest count.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- these tests read arbitrary JSON answers */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { createDb, migrate, type Db } from '../../gateway/db/knex.js';
import { systemClock } from '../../gateway/clock.js';
import { createTenant } from '../../gateway/tenants/tenants.js';
import { createApiKey } from '../../gateway/tenants/api-keys.js';
import { sealAudit, verifyAudit } from '../../gateway/audit/audit-log.js';
import { balances } from '../../gateway/ledger/ledger.js';
import { startReceiver } from '../helpers/receiver.js';

const root = path.resolve(import.meta.dirname, '../..');

export interface KillTestOptions {
  payments: number;
  kills: number;
  concurrency: number;
  pgUrl: string;
  log?: (line: string) => void;
}

export interface KillTestReport {
  payments: number;
  kills: number;
  paidAtProvider: number;
  succeeded: number;
  /** E-receipts issued (one per succeeded payment, checked among the problems). */
  receipts: number;
  problems: string[];
  eventsDelivered: number;
  events: number;
  seconds: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  throw new Error(`${url} did not come up`);
}

async function call(method: string, url: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* html */
  }
  return { status: res.status, body: parsed };
}

/** Retries a call through connection errors and 409 in-progress answers (the same idempotency key). */
async function until<T>(what: string, fn: () => Promise<{ status: number; body: any }>, ok: (r: { status: number; body: any }) => T | undefined): Promise<T> {
  const end = Date.now() + 120_000;
  let last = '';
  while (Date.now() < end) {
    try {
      const r = await fn();
      const v = ok(r);
      if (v !== undefined) return v;
      last = `${r.status} ${JSON.stringify(r.body).slice(0, 200)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(150);
  }
  throw new Error(`${what}: gave up (${last})`);
}

export async function runKillTest(o: KillTestOptions): Promise<KillTestReport> {
  const log = o.log ?? ((l: string) => console.log(l));
  const started = Date.now();
  const dbName = `feegate_kill_${process.pid}_${crypto.randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: o.pgUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(o.pgUrl);
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  const db: Db = createDb({ url: dbUrl, poolMax: 4 });
  const children: ChildProcess[] = [];
  const receiver = await startReceiver();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-kill-'));
  try {
    await migrate(db);
    const { tenantId, key } = await db.transaction(async (trx) => {
      const t = await createTenant(trx, systemClock, { code: 'kill-test', name: 'Phường Kill Test', kind: 'agency', taxCode: '0101234567' });
      return { tenantId: t.id, key: (await createApiKey(trx, systemClock, { tenantId: t.id, role: 'admin', mode: 'test', actor: 'kill-test' })).secret };
    });
    const secret = crypto.randomBytes(16).toString('hex');
    const simPort = await freePort();
    const gwPort = await freePort();
    const sim = spawn(process.execPath, ['--import', 'tsx', 'adapters/simulator-cli.ts', 'sandbox', '--port', String(simPort), '--secret', secret], {
      cwd: root,
      stdio: 'ignore',
    });
    children.push(sim);
    const simUrl = `http://127.0.0.1:${simPort}`;
    const gw = `http://127.0.0.1:${gwPort}`;
    const env = {
      ...process.env,
      PORT: String(gwPort),
      DATABASE_URL: dbUrl,
      PUBLIC_URL: gw,
      FEEGATE_DATA_DIR: dataDir,
      LOG_LEVEL: 'fatal',
      FEEGATE_SANDBOX_URL: simUrl,
      FEEGATE_SANDBOX_SECRET: secret,
      FEEGATE_ALLOWED_PRIVATE_HOSTS: '127.0.0.1',
      FEEGATE_MASTER_KEY: crypto.randomBytes(32).toString('base64'),
      JANITOR_SCHEDULE_SECONDS: '1,1,2,2,3',
      JOB_INTERVAL_MS: '200',
      LEASE_SECONDS: '12',
      IDEMPOTENCY_LOCK_SECONDS: '2',
      RATE_LIMIT_PER_MINUTE: '1000000',
    };
    let gateway: ChildProcess | undefined;
    const startGateway = async () => {
      gateway = spawn(process.execPath, ['--import', 'tsx', 'gateway/server.ts'], { cwd: root, env, stdio: 'ignore' });
      children.push(gateway);
      await waitFor(`${gw}/healthz`, 60_000);
    };
    await waitFor(`${simUrl}/sandbox/control/settlement.csv`, 30_000);
    await startGateway();
    const auth = { authorization: `Bearer ${key}` };
    await until(
      'webhook endpoint',
      () => call('POST', `${gw}/v1/webhook-endpoints`, { url: receiver.url, events: ['*'] }, { ...auth, 'idempotency-key': 'endpoint-1' }),
      (r) => (r.status === 201 ? true : undefined),
    );

    // The driver: bills and payments through the API, payers at the provider.
    const refs: { reference: string; provider: string }[] = [];
    let next = 0;
    const driver = async () => {
      for (let i = next++; i < o.payments; i = next++) {
        const provider = i % 2 === 0 ? 'sandbox' : 'sandbox_api';
        const bill = await until(
          `bill ${i}`,
          () =>
            call(
              'POST',
              `${gw}/v1/bills`,
              {
                external_ref: `KT-${i}`,
                kind: 'charge',
                payer: { name: `Người nộp ${i}` },
                items: [{ fee_code: 'P', name: 'Phí', amount: 10_000 + i }],
              },
              { ...auth, 'idempotency-key': `bill-${i}` },
            ),
          (r) => (r.status === 200 || r.status === 201 ? (r.body as { id: string }) : undefined),
        );
        const payment = await until(
          `payment ${i}`,
          () => call('POST', `${gw}/v1/payments`, { bill_id: bill.id, provider }, { ...auth, 'idempotency-key': `pay-${i}` }),
          (r) => (r.status === 201 ? (r.body as { reference: string; status: string; checkout: { url: string } | null }) : undefined),
        );
        refs.push({ reference: payment.reference, provider });
        if (payment.status !== 'pending' || !payment.checkout) continue;
        await until(
          `open ${i}`,
          () => call('GET', payment.checkout!.url, undefined, {}),
          (r) => (r.status === 200 ? true : undefined),
        );
        const result = Math.random() < 0.8 ? 'success' : Math.random() < 0.5 ? 'fail' : 'cancel';
        await until(
          `pay ${i}`,
          () => call('POST', `${simUrl}/sandbox/control/orders/${payment.reference}/complete`, { result }, {}),
          (r) => (r.status === 200 ? true : undefined),
        );
      }
    };
    const killer = async () => {
      for (let k = 0; k < o.kills; k++) {
        await sleep(400 + Math.random() * 900);
        gateway!.kill('SIGKILL');
        log(`kill ${k + 1}/${o.kills}`);
        await sleep(100 + Math.random() * 300);
        await startGateway();
      }
    };
    await Promise.all([...Array.from({ length: o.concurrency }, driver), killer()]);

    // Let the janitor and the outbox finish.
    const settleEnd = Date.now() + 90_000;
    for (;;) {
      // (The demo payments `npm start` creates at each start are another tenant's, and wait for their payer.)
      const [{ inflight }] = (await db('payments')
        .where({ tenant_id: tenantId })
        .whereIn('status', ['created', 'pending', 'unknown'])
        .count({ inflight: '*' })) as [{ inflight: string }];
      const [{ queued }] = (await db('outbox').where({ status: 'pending' }).count({ queued: '*' })) as [{ queued: string }];
      if (Number(inflight) === 0 && Number(queued) === 0) break;
      if (Date.now() > settleEnd) {
        const rows = await db('payments')
          .where({ tenant_id: tenantId })
          .whereIn('status', ['created', 'pending', 'unknown'])
          .select('reference', 'provider', 'status', 'check_count', 'next_check_at', 'failure_message');
        for (const r of rows as { reference: string }[]) {
          const order = (await call('GET', `${simUrl}/sandbox/control/orders/${r.reference}`, undefined, {})).body as { status?: string };
          log(`in flight: ${JSON.stringify(r)} provider: ${order.status ?? 'no order'}`);
        }
        throw new Error(`did not settle: ${inflight} payments in flight, ${queued} outbox rows queued`);
      }
      await sleep(300);
    }

    const problems: string[] = [];
    let paidAtProvider = 0;
    for (const { reference } of refs) {
      const order = (await call('GET', `${simUrl}/sandbox/control/orders/${reference}`, undefined, {})).body as { status?: string };
      const rows = (await db('payments').where({ reference })) as { id: string; status: string; amount: string }[];
      if (rows.length !== 1) {
        problems.push(`${reference}: ${rows.length} payment rows`);
        continue;
      }
      const p = rows[0]!;
      const credits = (await db('ledger_transfers').where({ payment_id: p.id, kind: 'payment.succeeded' })).length;
      if (order.status === 'SUCCESS') {
        paidAtProvider++;
        if (p.status !== 'succeeded' || credits !== 1) problems.push(`${reference}: paid at the provider, ours ${p.status} with ${credits} credits`);
      } else if (p.status === 'succeeded' || credits !== 0) {
        problems.push(`${reference}: provider says ${order.status ?? 'no order'}, ours ${p.status} with ${credits} credits`);
      }
    }
    const [{ succeeded }] = (await db('payments').where({ tenant_id: tenantId, status: 'succeeded' }).count({ succeeded: '*' })) as [{ succeeded: string }];
    const [{ sum }] = (await db('payments').where({ tenant_id: tenantId, status: 'succeeded' }).sum({ sum: 'amount' })) as [{ sum: string | null }];
    const clearing = (await balances(db, tenantId)).find((b) => b.account === 'provider_clearing:sandbox')?.balance ?? 0;
    const clearingApi = (await balances(db, tenantId)).find((b) => b.account === 'provider_clearing:sandbox_api')?.balance ?? 0;
    if (clearing + clearingApi !== Number(sum ?? 0)) problems.push(`journal ${clearing + clearingApi} ≠ payments ${sum}`);
    const [{ doubled }] = (await db('payments')
      .where({ tenant_id: tenantId })
      .whereIn('status', ['succeeded'])
      .groupBy('bill_id')
      .havingRaw('count(*) > 1')
      .count({ doubled: '*' })
      .then((r) => (r.length ? r : [{ doubled: 0 }]))) as [{ doubled: string | number }];
    if (Number(doubled) > 0) problems.push(`${doubled} bills paid twice`);
    await sealAudit(db);
    for (const t of (await db('tenants').select('id', 'code')) as { id: string; code: string }[]) {
      const v = await verifyAudit(db, t.id);
      if (!v.ok) problems.push(`audit chain of ${t.code} broken: ${JSON.stringify(v.broken)}`);
    }
    const [{ bad }] = (await db('outbox').whereIn('status', ['pending', 'dead']).count({ bad: '*' })) as [{ bad: string }];
    if (Number(bad) > 0) problems.push(`${bad} outbox rows pending or dead`);
    // E-receipts: one per succeeded payment, none for any other, numbered 1..n per series and year.
    const {
      rows: [rc],
    } = (await db.raw(
      `SELECT (SELECT count(*) FROM receipts WHERE tenant_id = ?) AS receipts,
              (SELECT count(*) FROM payments p WHERE p.tenant_id = ? AND p.status = 'succeeded'
                 AND (SELECT count(*) FROM receipts r WHERE r.payment_id = p.id AND r.kind = 'original') <> 1) AS wrong,
              (SELECT count(*) FROM receipts r JOIN payments p ON p.id = r.payment_id WHERE r.tenant_id = ? AND p.status <> 'succeeded') AS stray,
              (SELECT count(*) FROM (SELECT series_id, year, max(number) - count(*) AS gap FROM receipts WHERE tenant_id = ?
                                       GROUP BY series_id, year) g WHERE gap <> 0) AS gapped`,
      [tenantId, tenantId, tenantId, tenantId],
    )) as { rows: { receipts: string; wrong: string; stray: string; gapped: string }[] };
    if (Number(rc!.wrong) > 0) problems.push(`${rc!.wrong} succeeded payments without exactly one receipt`);
    if (Number(rc!.stray) > 0) problems.push(`${rc!.stray} receipts for payments that did not succeed`);
    if (Number(rc!.gapped) > 0) problems.push(`${rc!.gapped} receipt series with a gap or a duplicate number`);
    const events = (await db('events').where({ tenant_id: tenantId }).select('id')) as { id: string }[];
    const delivered = new Set(receiver.received.map((r) => String(r.headers['feegate-event-id'])));
    const missing = events.filter((e) => !delivered.has(e.id));
    if (missing.length) problems.push(`${missing.length} of ${events.length} events never delivered`);
    return {
      payments: refs.length,
      kills: o.kills,
      paidAtProvider,
      succeeded: Number(succeeded),
      receipts: Number(rc!.receipts),
      problems,
      eventsDelivered: events.length - missing.length,
      events: events.length,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await receiver.close();
    await db.destroy();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : dflt;
  };
  runKillTest({
    payments: arg('payments', 200),
    kills: arg('kills', 8),
    concurrency: arg('concurrency', 6),
    pgUrl: process.env.PG_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  }).then(
    (r) => {
      console.log(JSON.stringify(r, null, 2));
      process.exit(r.problems.length ? 1 : 0);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
