/**
 * FEEGATE_WORKERS=2 on PostgreSQL, as a real cluster (a child process): both workers must agree.
 * Every request here opens its own TCP connection, so the cluster primary deals them out to the
 * workers in turn (round-robin): consecutive requests reach different processes.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- these tests read arbitrary JSON answers */
import t from 'tap';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { openTestDb, postgresAvailable } from './helpers/db.js';
import { freePort, startServer } from './helpers/server-process.js';

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

/** One request on a fresh connection (agent: false), no redirects followed. */
function call(url: string, opts: { method?: string; key?: string; body?: unknown; form?: Record<string, string> } = {}): Promise<Res> {
  const body = opts.form ? new URLSearchParams(opts.form).toString() : opts.body !== undefined ? JSON.stringify(opts.body) : undefined;
  const headers: Record<string, string> = {};
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  if (body !== undefined) headers['content-type'] = opts.form ? 'application/x-www-form-urlencoded' : 'application/json';
  if ((opts.method ?? 'GET') === 'POST' && !opts.form) headers['idempotency-key'] = crypto.randomUUID();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Follows redirects (each hop on a fresh connection), as a browser would. */
async function browse(url: string, opts: Parameters<typeof call>[1] = {}): Promise<Res> {
  let res = await call(url, opts);
  for (let hops = 0; hops < 5 && res.status >= 300 && res.status < 400 && res.headers.location; hops++) {
    url = new URL(res.headers.location, url).toString();
    res = await call(url);
  }
  return res;
}

/** The gateway processes forked by `parent` (from /proc: the old primary named none in its logs). */
function workerPids(parent: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === parent && fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('gateway/server.ts') ? [Number(d)] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('two workers on PostgreSQL agree', async (t) => {
  if (!(await postgresAvailable())) {
    if (process.env.CI === 'true') t.fail('PostgreSQL is not reachable (CI=true)');
    else t.plan(0, 'skip: PostgreSQL not reachable');
    return;
  }
  const pg = await openTestDb('postgres');
  t.teardown(() => pg.close());
  await pg.db.destroy();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-workers-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer({ PORT: String(port), FEEGATE_DATA_DIR: dataDir, DATABASE_URL: pg.url!, FEEGATE_WORKERS: '2' });
  t.teardown(async () => {
    if (server.alive()) await server.stop();
  });
  const admin = /Demo API key: +(\S+)/.exec(server.out())![1]!;
  // Both workers up (worker 0 prints the banner; wait until the other answers too).
  for (let i = 0; i < 4; i++) t.equal((await call(`${base}/v1/api-keys`, { key: admin })).status, 200, `warm-up request ${i}`);

  await t.test('a key revoked through one worker is refused by both within 1 s, and mints nothing', async (t) => {
    const made = await call(`${base}/v1/api-keys`, { method: 'POST', key: admin, body: { role: 'admin', label: 'to revoke' } });
    t.equal(made.status, 201);
    const doomed = made.json.secret as string;
    // Both workers cache the key as valid.
    for (let i = 0; i < 6; i++) t.equal((await call(`${base}/v1/api-keys`, { key: doomed })).status, 200);
    const revoked = await call(`${base}/v1/api-keys/${made.json.id}/revoke`, { method: 'POST', key: admin });
    t.equal(revoked.status, 200);
    await sleep(250);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(`${base}/v1/api-keys`, { key: doomed })).status);
    for (let i = 0; i < 4; i++) {
      statuses.push((await call(`${base}/v1/api-keys`, { method: 'POST', key: doomed, body: { role: 'admin', label: 'successor' } })).status);
    }
    t.same(statuses, Array(10).fill(401), 'every worker refuses the revoked key');
    const keys = (await call(`${base}/v1/api-keys?limit=100`, { key: admin })).json.data as { label: string }[];
    t.notOk(
      keys.some((k) => k.label === 'successor'),
      'no key was minted by the revoked one',
    );
  });

  await t.test('new provider credentials are seen at once by both workers', async (t) => {
    const creds = (tmn: string) => ({
      credentials: {
        tmn_code: tmn,
        hash_secret: 'WORKERSTESTSECRETNOTREAL0000000',
        pay_url: 'https://sandbox.vnpayment.vn/paymentv2/vpcpay.html',
        api_url: 'https://sandbox.vnpayment.vn/merchant_webapi/api/transaction',
      },
    });
    const tmnSeen = async () => {
      const out: string[] = [];
      for (let i = 0; i < 6; i++) {
        const list = (await call(`${base}/v1/provider-credentials`, { key: admin })).json.data as { provider: string; fields: Record<string, string> }[];
        out.push(list.find((c) => c.provider === 'vnpay')?.fields.tmn_code ?? '(none)');
      }
      return out;
    };
    t.equal((await call(`${base}/v1/provider-credentials/vnpay`, { method: 'POST', key: admin, body: creds('OLDTMN01') })).status, 200);
    t.same(await tmnSeen(), Array(6).fill('OLDTMN01'), 'both workers have the first credentials (and cache them)');
    t.equal((await call(`${base}/v1/provider-credentials/vnpay`, { method: 'POST', key: admin, body: creds('NEWTMN02') })).status, 200);
    await sleep(250);
    t.same(await tmnSeen(), Array(6).fill('NEWTMN02'), 'both workers use the new credentials');
  });

  await t.test('a simulator pay page works whichever worker serves each step', async (t) => {
    for (let i = 0; i < 3; i++) {
      const bill = await call(`${base}/v1/bills`, {
        method: 'POST',
        key: admin,
        body: {
          external_ref: `workers-${i}-${Date.now()}`,
          kind: 'procedure_fee',
          dossier_code: 'G01.20260310.WORK',
          procedure_code: '1.001612',
          description: 'Lệ phí (workers test)',
          payer: { name: 'Nguyễn Văn An' },
          items: [{ fee_code: 'LP-HT-01', name: 'Lệ phí cấp bản sao', amount: 8000, legal_basis: 'Thông tư 85/2019/TT-BTC' }],
        },
      });
      t.equal(bill.status, 201, `bill ${i}`);
      const payment = await call(`${base}/v1/payments`, { method: 'POST', key: admin, body: { bill_id: bill.json.id, provider: 'sandbox' } });
      t.equal(payment.status, 201, `payment ${i}`);
      const payUrl = payment.json.checkout.url as string;
      const page = await call(payUrl);
      t.equal(page.status, 200, 'the pay page is found');
      const action = /<form method="post" action="([^"]+)"/.exec(page.text)?.[1];
      t.ok(action, 'the page has a payment form');
      const back = await browse(new URL(action!, payUrl).toString(), { method: 'POST', form: { result: 'success' } });
      t.equal(back.status, 200, 'the POST is accepted');
      t.match(back.text, /Thanh toán thành công/, 'and the payer sees success');
      let status = '';
      for (let tries = 0; tries < 50 && status !== 'succeeded'; tries++, await sleep(100)) {
        status = (await call(`${base}/v1/payments/${payment.json.id}`, { key: admin })).json.status;
      }
      t.equal(status, 'succeeded', 'the payment succeeded');
    }
  });

  await t.test('kill -9 of one worker: the gateway keeps answering and the worker is replaced', async (t) => {
    const before = workerPids(server.pid);
    t.equal(before.length, 2, 'two workers run');
    const victim = before[1]!;
    process.kill(victim, 'SIGKILL');
    await sleep(300);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push(
        await call(`${base}/healthz`).then(
          (r) => r.status,
          () => 0,
        ),
      );
    t.same(statuses, Array(6).fill(200), 'the other worker answers meanwhile');
    let after: number[] = [];
    for (let tries = 0; tries < 300 && after.length < 2; tries++, await sleep(100)) after = workerPids(server.pid);
    t.equal(after.length, 2, 'two workers again');
    t.notOk(after.includes(victim), 'the killed one replaced by a new process');
    t.match(server.out(), /worker \d \(pid \d+\) exited \(signal SIGKILL\); restarting/, 'the primary says so');
    t.ok(server.alive(), 'the gateway is still running');
    // Once the new worker listens, both answer API calls again.
    await sleep(200);
    let ok = 0;
    for (let tries = 0; tries < 100 && ok < 6; tries++) {
      const r = await call(`${base}/v1/api-keys`, { key: admin }).then(
        (x) => x.status,
        () => 0,
      );
      ok = r === 200 ? ok + 1 : 0;
      if (r !== 200) await sleep(200);
    }
    t.equal(ok, 6, 'six API calls in a row succeed');
  });

  t.equal(await server.stop(), 0, 'SIGTERM stops the primary and both workers cleanly');
});
