/**
 * Gapless numbering under concurrency and crashes, on PostgreSQL: 100 succeeded payments, their
 * receipts issued by two gateway processes at once → numbers 1..100, none missing, none twice.
 * Then the same with one process killed (SIGKILL) in the middle: still 1..100.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Test } from 'tap';
import { eachDb } from './helpers/db.js';
import { billAndPayment, makeApp, payAt, seedTenant, TEST_DEV_CA_DIR, TEST_MASTER_KEY } from './helpers/app.js';
import type { Db } from '../gateway/db/knex.js';

const root = path.resolve(import.meta.dirname, '..');

function worker(url: string, name: string): { child: ChildProcess; done: Promise<number | null>; ran: () => number } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/receipt-worker.ts', url, name], {
    cwd: root,
    env: { ...process.env, FEEGATE_MASTER_KEY: TEST_MASTER_KEY, FEEGATE_DEV_CA_DIR: TEST_DEV_CA_DIR, LEASE_SECONDS: '2', FEEGATE_MODE: 'development' },
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', (d) => (out += d));
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('exit', (code, signal) => (code === 0 || signal === 'SIGKILL' ? resolve(code) : reject(new Error(`worker ${name} exited ${code}: ${err}`))));
  });
  return { child, done, ran: () => (JSON.parse(out.trim().split('\n').at(-1) ?? '{"ran":0}') as { ran: number }).ran };
}

async function hundredPaid(t: Test, db: Db) {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  for (let i = 0; i < 100; i++) {
    const { payment } = await billAndPayment(env.app, ten.keys.integration);
    await payAt(env.sim, payment, 'success');
  }
  // The first receipt's dev certificate is issued here, so both workers share one certificate.
  await env.app.deps.certs.signer(db, (await db('tenants').where({ id: ten.tenantId }).first())!);
  return ten;
}

async function checkNumbers(t: Test, db: Db, tenantId: string) {
  const rows = (await db('receipts').where({ tenant_id: tenantId, kind: 'original' }).orderBy('number').select('number', 'payment_id')) as {
    number: number;
    payment_id: string;
  }[];
  t.equal(rows.length, 100, '100 receipts');
  t.same(
    rows.map((r) => r.number),
    Array.from({ length: 100 }, (_, i) => i + 1),
    'numbers 1..100: no gap, no duplicate',
  );
  t.equal(new Set(rows.map((r) => r.payment_id)).size, 100, 'one per payment');
  const [{ n }] = (await db('payments').where({ tenant_id: tenantId, status: 'succeeded' }).count({ n: '*' })) as [{ n: string }];
  t.equal(Number(n), 100);
}

eachDb(
  'receipts: two processes issue 100 receipts concurrently, numbered 1..100',
  async (t, { db, url }) => {
    const ten = await hundredPaid(t, db);
    const a = worker(url!, 'A');
    const b = worker(url!, 'B');
    await Promise.all([a.done, b.done]);
    t.ok(a.ran() > 0 && b.ran() > 0, `both processes issued receipts (A ran ${a.ran()} rows, B ${b.ran()})`);
    await checkNumbers(t, db, ten.tenantId);
  },
  { engines: ['postgres'] },
);

eachDb(
  'receipts: a process killed mid-issuance leaves no gap',
  async (t, { db, url }) => {
    const ten = await hundredPaid(t, db);
    const a = worker(url!, 'A');
    const b = worker(url!, 'B');
    // Kill A once receipts are flowing (it is most likely inside a transaction: numbered, not committed).
    for (let i = 0; i < 400; i++) {
      const [{ n }] = (await db('receipts').count({ n: '*' })) as [{ n: string }];
      if (Number(n) >= 20) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    a.child.kill('SIGKILL');
    await a.done;
    await b.done; // B takes over A's rows when their lease ends
    await checkNumbers(t, db, ten.tenantId);
    const [{ left }] = (await db('outbox').where({ kind: 'receipt.issue' }).whereNot({ status: 'done' }).count({ left: '*' })) as [{ left: string }];
    t.equal(Number(left), 0, 'every receipt.issue row is done');
  },
  { engines: ['postgres'] },
);
