/**
 * The production layout for throughput: API processes with FEEGATE_JOBS=false, and one process of
 * its own for the background jobs (FEEGATE_HTTP=false, `npm run jobs`). On PostgreSQL: the API
 * process alone takes a payment and its callback but issues no receipt and expires no bill; once
 * the jobs process runs, the receipt is issued and the janitor expires the overdue bill, and the
 * jobs process serves no HTTP.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { eachDb } from './helpers/db.js';
import { billInput, TEST_DEV_CA_DIR, TEST_MASTER_KEY } from './helpers/app.js';
import { freePort, root } from './helpers/server-process.js';
import { withSignature } from '../adapters/sandbox/protocol.js';

const SECRET = 'jobs-process-test-sandbox-secret';

function gateway(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/server.ts'], {
    cwd: root,
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      FEEGATE_MODE: 'development',
      FEEGATE_MASTER_KEY: TEST_MASTER_KEY,
      FEEGATE_DEV_CA_DIR: TEST_DEV_CA_DIR,
      FEEGATE_SANDBOX_SECRET: SECRET,
      JOB_INTERVAL_MS: '200',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return {
    out: () => out,
    exited,
    waitFor: async (re: RegExp, what: string, ms = 120_000) => {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}) waiting for ${what}:\n${out}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

eachDb(
  'jobs process: API processes without jobs plus one jobs process issue receipts and run the janitor',
  async (t, { db, url }) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-jobs-proc-'));
    t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const [apiPort, jobsPort] = [await freePort(), await freePort()];
    const common = { DATABASE_URL: url!, FEEGATE_DATA_DIR: dataDir };

    const api = gateway({ ...common, PORT: String(apiPort), FEEGATE_JOBS: 'false' });
    t.teardown(api.stop);
    await api.waitFor(/Demo API key:\s+(\S+)/, 'the API banner');
    const key = /Demo API key:\s+(\S+)/.exec(api.out())![1]!;
    const base = `http://127.0.0.1:${apiPort}`;
    const post = async (p: string, body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };

    // A payment, credited by its (signed) callback on the API process.
    const bill = await post('/v1/bills', billInput());
    t.equal(bill.status, 201, 'bill created');
    const pay = await post('/v1/payments', { bill_id: bill.body.id, provider: 'sandbox' }, { 'idempotency-key': `jobs-proc-${Date.now()}` });
    t.equal(pay.status, 201, 'payment created');
    const reference = pay.body.reference as string;
    const ts = Math.floor(Date.now() / 1000);
    const cb = await fetch(`${base}/v1/notify/sandbox`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(
        withSignature(
          {
            merchant: 'FEEGATE-SANDBOX',
            reference,
            txn_id: `T${reference}`,
            status: 'SUCCESS',
            code: '00',
            amount: pay.body.amount as number,
            currency: 'VND',
            paid_at: ts,
            ts,
          },
          SECRET,
        ),
      ),
    });
    t.equal(cb.status, 200, 'callback accepted');
    t.equal(((await db('payments').where({ reference }).first()) as { status: string }).status, 'succeeded', 'credited by the API process');

    // An open bill already past its due date: the janitor's to expire.
    const overdue = await post('/v1/bills', billInput());
    await db('bills').where({ id: overdue.body.id }).update({ due_date: '2020-01-01' });

    const receipts = async () => Number(((await db('receipts').where({ payment_id: pay.body.id }).count({ n: '*' })) as [{ n: string }])[0].n);
    const billStatus = async () => ((await db('bills').where({ id: overdue.body.id }).first()) as { status: string }).status;
    await new Promise((r) => setTimeout(r, 2000)); // ten job intervals
    t.equal(await receipts(), 0, 'FEEGATE_JOBS=false: the API process issues no receipt');
    t.equal(await billStatus(), 'open', 'FEEGATE_JOBS=false: the API process runs no janitor');

    const jobs = gateway({ ...common, PORT: String(jobsPort), FEEGATE_HTTP: 'false' });
    t.teardown(jobs.stop);
    await jobs.waitFor(/jobs process: no HTTP/, 'the jobs banner');
    const deadline = Date.now() + 60_000;
    while ((await receipts()) === 0 || (await billStatus()) !== 'expired') {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    t.equal(await receipts(), 1, 'the jobs process issued the receipt');
    t.equal(await billStatus(), 'expired', "the jobs process's janitor expired the overdue bill");
    const events = (await db('events').where({ object_id: overdue.body.id, type: 'bill.expired' })) as unknown[];
    t.equal(events.length, 1, 'bill.expired emitted once');
    t.notOk(await listening(jobsPort), 'the jobs process serves no HTTP');
    t.equal((await fetch(`${base}/livez`)).status, 200, 'the API process still serves');

    t.equal(await jobs.stop(), 0, 'the jobs process stops cleanly on SIGTERM');
    t.equal(await api.stop(), 0, 'the API process stops cleanly on SIGTERM');
  },
  { engines: ['postgres'] },
);

t.test('jobs process: refuses a configuration that would do nothing, or PGlite', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-jobs-proc-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const nothing = gateway({ FEEGATE_HTTP: 'false', FEEGATE_JOBS: 'false', DATABASE_URL: 'postgres://127.0.0.1:1/x', FEEGATE_DATA_DIR: dataDir });
  t.not(await nothing.exited, 0, 'FEEGATE_HTTP=false with FEEGATE_JOBS=false exits with an error');
  t.match(nothing.out(), /would do nothing/);
  const pglite = gateway({ FEEGATE_HTTP: 'false', DATABASE_URL: '', FEEGATE_DATA_DIR: dataDir });
  t.not(await pglite.exited, 0, 'a jobs process on embedded PGlite exits with an error');
  t.match(pglite.out(), /needs DATABASE_URL/);
});
