/**
 * npm run bench: throughput and latency of the gateway on PostgreSQL, measured with autocannon
 * against a real server process on this machine (server and load generator share the cores).
 *   (a) GET /livez: a trivial route, the ceiling of fastify + this machine
 *   (b) POST /v1/payments with a fresh Idempotency-Key and a fresh bill per request
 *   (c) POST /v1/notify/sandbox: verified callback → dedupe → transition → journal → audit
 *   (d) receipts: build + XML-DSig sign per second on one core, next to raw RSA-2048 crypto.sign
 *       in the same run (the physical limit), and our verifier
 *   (f) POST/GET /v1/notify/<provider> for VNPay, MoMo, ZaloPay and PayGov: each provider's signed
 *       callback (built by its simulator) → verify → dedupe → transition → journal → audit → events
 *   (e) receipts issued end to end by the server's outbox worker for the payments (c) made
 *       succeed (number taken, XML built and signed, stored, event emitted; PostgreSQL)
 *   (g) verifier flood: the (c) callbacks alone, then again while BENCH_FLOOD_CONNECTIONS (default 8)
 *       clients post hostile XML to the public verifier non-stop (the issue-10 attack: 120,000
 *       elements in 480 KiB, alternating with a 500 KiB document inside the limits that reaches the
 *       DOM); callback p99 flooded vs quiet (target: within 2x). The public buckets are opened wide
 *       so every flood request reaches the verifier (many addresses, or one behind a wide proxy).
 *   (h) a year of data: the empty-table lists first, then BENCH_YEAR_ROWS (default 1,000,000) settled
 *       payments seeded with generate_series and ANALYZEd, then payment creation, the lists filtered
 *       by a rare status and callbacks again, on fresh rows no ANALYZE has seen; beside (b) and (c)
 *       of the same run (BENCH_CASES=a,b,c,h; seeding takes a few minutes). Also one pass of the
 *       janitor's bill-expiry sweep before and after the load.
 * BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 32), PG_BENCH_URL (server to use),
 * BENCH_CASES (e.g. "b,c"), BENCH_SERVER_NODE_ARGS (e.g. "--cpu-prof" to profile the server).
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import autocannon from 'autocannon';
import pg from 'pg';
import { createDb, migrate } from '../../gateway/db/knex.js';
import { systemClock } from '../../gateway/clock.js';
import { createTenant } from '../../gateway/tenants/tenants.js';
import { createApiKey } from '../../gateway/tenants/api-keys.js';
import { withSignature } from '../../adapters/sandbox/protocol.js';
import { benchSigning } from './receipts.js';
import { BENCH_PROVIDERS, callbackFactory } from './provider-callbacks.js';
import { seedYear, sweepMs } from './scale.js';

const root = path.resolve(import.meta.dirname, '../..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const BASE = process.env.PG_BENCH_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SECRET = 'bench-sandbox-secret';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

async function run(name: string, opts: autocannon.Options): Promise<Result> {
  const r = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...opts });
  return {
    name,
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    total: r.requests.total,
  };
}

async function main() {
  const dbName = 'feegate_bench';
  const admin = new pg.Client({ connectionString: BASE });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = new URL(BASE);
  url.pathname = `/${dbName}`;
  const dbUrl = url.toString();
  const db = createDb({ url: dbUrl, poolMax: 4 });
  await migrate(db);

  // One school with a key, and enough bills and pending payments for every request.
  const { tenantId, key } = await db.transaction(async (trx) => {
    const t = await createTenant(trx, systemClock, { code: 'bench-school', name: 'Trường Bench', kind: 'school', taxCode: '0101234567' });
    const k = await createApiKey(trx, systemClock, { tenantId: t.id, role: 'integration', mode: 'test', actor: 'bench' });
    return { tenantId: t.id, key: k.secret };
  });
  const N = Number(process.env.BENCH_ROWS ?? 60_000);
  const seedBills = async (prefix: string) =>
    (
      (await db.raw(
        `INSERT INTO bills (tenant_id, external_ref, kind, payer, total_amount, request_hash, created_at, updated_at, student_code, school_year, term)
       SELECT ?, ? || g, 'tuition', '{"name":"Phụ huynh"}', 1500000, 'x', now(), now(), 'HS' || g, '2026-2027', 'HK1'
       FROM generate_series(1, ?) g RETURNING id`,
        [tenantId, prefix, N],
      )) as { rows: { id: string }[] }
    ).rows.map((r) => r.id);
  const billsForPayments = await seedBills('pay-');
  const billsForCallbacks = await seedBills('cb-');
  await db.raw(`INSERT INTO bill_items (bill_id, position, fee_code, name, amount) SELECT id, 0, 'HP', 'Học phí', 1500000 FROM bills WHERE tenant_id = ?`, [
    tenantId,
  ]);
  const refs = (
    (await db.raw(
      `INSERT INTO payments (tenant_id, bill_id, reference, provider, amount, status, expires_at, created_at, updated_at)
     SELECT ?, id, 'FG' || upper(substr(md5(id::text), 1, 20)), 'sandbox', 1500000, 'pending', now() + interval '1 day', now(), now()
     FROM unnest(?::uuid[]) AS id RETURNING reference`,
      [tenantId, billsForCallbacks],
    )) as { rows: { reference: string }[] }
  ).rows.map((r) => r.reference);
  // (f): pending payments per provider, each on its own bill.
  const providerRefs: Record<string, string[]> = {};
  const perProvider = Number(process.env.BENCH_PROVIDER_ROWS ?? 40_000);
  for (const provider of BENCH_PROVIDERS) {
    const bills = (
      (await db.raw(
        `INSERT INTO bills (tenant_id, external_ref, kind, payer, total_amount, request_hash, created_at, updated_at, student_code, school_year, term)
       SELECT ?, ? || g, 'tuition', '{"name":"Phụ huynh"}', 1500000, 'x', now(), now(), 'HS' || g, '2026-2027', 'HK1'
       FROM generate_series(1, ?) g RETURNING id`,
        [tenantId, `${provider}-`, perProvider],
      )) as { rows: { id: string }[] }
    ).rows.map((r) => r.id);
    await db.raw(`INSERT INTO bill_items (bill_id, position, fee_code, name, amount) SELECT id, 0, 'HP', 'Học phí', 1500000 FROM unnest(?::uuid[]) AS id`, [
      bills,
    ]);
    providerRefs[provider] = (
      (await db.raw(
        `INSERT INTO payments (tenant_id, bill_id, reference, provider, amount, status, expires_at, created_at, updated_at)
       SELECT ?, id, 'FG' || upper(substr(md5(id::text), 1, 20)), ?, 1500000, 'pending', now() + interval '1 day', now(), now()
       FROM unnest(?::uuid[]) AS id RETURNING reference`,
        [tenantId, provider, bills],
      )) as { rows: { reference: string }[] }
    ).rows.map((r) => r.reference);
  }
  await db.destroy();

  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-bench-'));
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const server = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'gateway/server.ts'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_URL: dbUrl,
      FEEGATE_DATA_DIR: dataDir,
      LOG_LEVEL: 'error',
      FEEGATE_SANDBOX_SECRET: SECRET,
      RATE_LIMIT_PER_MINUTE: '100000000',
      VERIFY_RATE_LIMIT_PER_MINUTE: '100000000',
      DATABASE_POOL_MAX: process.env.DATABASE_POOL_MAX ?? '20',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('listening on')) resolve();
    });
    server.on('exit', (c) => reject(new Error(`server exited ${c}: ${out}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const results: Result[] = [];
  let issued: { receipts: number; rps: number; secs: number } | undefined;
  let credited: { provider: string; n: string }[] = [];
  let scale: { rows: number; seedSecs: number; sweepBefore: number; sweepAfter: number } | undefined;
  let flood:
    | { quietP99: number; floodedP99: number; answered: number; failed: number; requests: number; statuses: Record<string, number>; connections: number }
    | undefined;
  try {
    const cases = (process.env.BENCH_CASES ?? 'a,b,c,f,d,e').split(',');
    await run('warm-up', { url: `${base}/livez`, duration: 2 });
    if (cases.includes('a')) results.push(await run('(a) GET /livez (trivial)', { url: `${base}/livez` }));

    let i = 0;
    if (cases.includes('b'))
      results.push(
        await run('(b) POST /v1/payments', {
          url: base,
          requests: [
            {
              method: 'POST',
              path: '/v1/payments',
              setupRequest: (req) => {
                const bill = billsForPayments[i++ % billsForPayments.length];
                return {
                  ...req,
                  headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'idempotency-key': `bench-${i}-${bill}` },
                  body: JSON.stringify({ bill_id: bill, provider: 'sandbox' }),
                };
              },
            },
          ],
        }),
      );
    if (i > billsForPayments.length) console.warn(`(b) ran out of fresh bills after ${billsForPayments.length}: later requests were refused`);

    let j = 0;
    const ts = Math.floor(Date.now() / 1000);
    if (cases.includes('c'))
      results.push(
        await run('(c) POST /v1/notify/sandbox', {
          url: base,
          requests: sandboxCallbacks(() => refs[j++ % refs.length]!, ts),
        }),
      );
    if (j > refs.length) console.warn('(c) ran out of pending payments: later callbacks were duplicates');

    if (cases.includes('g')) {
      const callbacks = (name: string) =>
        run(name, {
          url: base,
          requests: sandboxCallbacks(() => refs[j++ % refs.length]!, ts),
        });
      // The verifier pool starts on first use: start it before measuring anything.
      await fetch(`${base}/v1/receipts/verify`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<BLai/>' });
      const quiet = await callbacks('(g) callbacks, quiet');
      results.push(quiet);
      const xml = { 'content-type': 'application/xml' };
      const manyElements = `<BLai>${'<a/>'.repeat(120_000)}</BLai>`;
      const withinLimits = `<BLai><DLBLai Id="a">${'<LPhi><TPhi>1</TPhi></LPhi>'.repeat(1_600)}<GChu>${'x'.repeat(450 * 1024)}</GChu></DLBLai></BLai>`;
      const statuses: Record<string, number> = {};
      const floodConnections = Number(process.env.BENCH_FLOOD_CONNECTIONS ?? 8);
      let attackResult: autocannon.Result | undefined;
      const attackDone = new Promise<void>((resolve, reject) => {
        const attacker = autocannon(
          {
            url: base,
            connections: floodConnections,
            duration: SECONDS + 2,
            requests: [
              { method: 'POST', path: '/v1/receipts/verify', headers: xml, body: manyElements },
              { method: 'POST', path: '/v1/receipts/verify', headers: xml, body: withinLimits },
            ],
          },
          (err, res) => (err ? reject(err) : ((attackResult = res), resolve())),
        );
        attacker.on('response', (_client, status) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
        });
      });
      await new Promise((r) => setTimeout(r, 1000)); // the flood is on before the callbacks start
      const flooded = await callbacks(`(g) callbacks, verifier flooded by ${floodConnections} clients`);
      results.push(flooded);
      await attackDone;
      flood = {
        quietP99: quiet.p99,
        floodedP99: flooded.p99,
        answered: flooded.total - flooded.errors,
        failed: flooded.errors,
        requests: attackResult!.requests.total,
        statuses,
        connections: floodConnections,
      };
      if (j > refs.length) console.warn('(g) ran out of pending payments: later callbacks were duplicates');
    }

    if (cases.includes('f')) {
      const make = callbackFactory(SECRET, base);
      for (const provider of BENCH_PROVIDERS) {
        let k = 0;
        const refsFor = providerRefs[provider]!;
        results.push(
          await run(`(f) ${provider} callback`, {
            url: base,
            requests: [
              {
                setupRequest: (req) => {
                  const n = k++;
                  const c = make[provider](refsFor[n % refsFor.length]!, 1500000, n);
                  return { ...req, method: c.method, path: c.path, headers: c.headers, body: c.body };
                },
              },
            ],
          }),
        );
        if (k > refsFor.length) console.warn(`(f) ${provider} ran out of pending payments: later callbacks were duplicates`);
      }
      // Proof the callbacks were believed, not just answered: payments that succeeded, per provider.
      const check = createDb({ url: dbUrl, poolMax: 1 });
      credited = (
        await check.raw(`SELECT provider, count(*) AS n FROM payments WHERE status = 'succeeded' AND provider = ANY(?) GROUP BY provider ORDER BY provider`, [
          BENCH_PROVIDERS as unknown as string[],
        ])
      ).rows as { provider: string; n: string }[];
      await check.destroy();
    }

    if (cases.includes('e')) {
      // The server's own jobs issue the receipts of the payments (c) made succeed; watch them drain.
      const watch = createDb({ url: dbUrl, poolMax: 1 });
      const count = async () => {
        const [{ done, left }] = (
          await watch.raw(
            `SELECT (SELECT count(*) FROM receipts) AS done, (SELECT count(*) FROM outbox WHERE kind = 'receipt.issue' AND status = 'pending') AS left`,
          )
        ).rows as [{ done: string; left: string }];
        return { done: Number(done), left: Number(left) };
      };
      const start = await count();
      const t0 = performance.now();
      let now = start;
      while (now.left > 0 && performance.now() - t0 < 300_000) {
        await new Promise((r) => setTimeout(r, 250));
        now = await count();
      }
      const secs = (performance.now() - t0) / 1000;
      await watch.destroy();
      issued = { receipts: now.done, rps: (now.done - start.done) / secs, secs };
    }

    if (cases.includes('h')) {
      const auth = { authorization: `Bearer ${key}` };
      const lists = async (label: string) => {
        results.push(await run(`(h) GET /v1/payments?status=refunded, ${label}`, { url: `${base}/v1/payments?status=refunded`, headers: auth }));
        results.push(await run(`(h) GET /v1/bills?status=cancelled, ${label}`, { url: `${base}/v1/bills?status=cancelled`, headers: auth }));
      };
      await lists('empty tables');
      const YEAR = Number(process.env.BENCH_YEAR_ROWS ?? 1_000_000);
      const seedDb = createDb({ url: dbUrl, poolMax: 2 });
      const sweepBefore = await sweepMs(seedDb);
      const seedSecs = await seedYear(seedDb, tenantId, YEAR);
      const sweepAfter = await sweepMs(seedDb);
      // Fresh rows for the measured requests, after the ANALYZE: bills to pay, payments in flight to call back.
      const fresh = Number(process.env.BENCH_ROWS ?? 60_000);
      const freshBills = async (prefix: string) => {
        const ids = (
          (await seedDb.raw(
            `INSERT INTO bills (tenant_id, external_ref, kind, payer, total_amount, request_hash, created_at, updated_at, student_code, school_year, term)
           SELECT ?, ? || g, 'tuition', '{"name":"Phụ huynh"}', 1500000, 'x', now(), now(), 'HS' || g, '2026-2027', 'HK1'
           FROM generate_series(1, ?) g RETURNING id`,
            [tenantId, prefix, fresh],
          )) as { rows: { id: string }[] }
        ).rows.map((r) => r.id);
        await seedDb.raw(
          `INSERT INTO bill_items (bill_id, position, fee_code, name, amount) SELECT id, 0, 'HP', 'Học phí', 1500000 FROM unnest(?::uuid[]) AS id`,
          [ids],
        );
        return ids;
      };
      const payBills = await freshBills('year-pay-');
      const cbRefs = (
        (await seedDb.raw(
          `INSERT INTO payments (tenant_id, bill_id, reference, provider, amount, status, expires_at, next_check_at, created_at, updated_at)
         SELECT ?, id, 'FGZ' || md5(id::text), 'sandbox', 1500000, 'pending', now() + interval '1 day', now() + interval '1 day', now(), now()
         FROM unnest(?::uuid[]) AS id RETURNING reference`,
          [tenantId, await freshBills('year-cb-')],
        )) as { rows: { reference: string }[] }
      ).rows.map((r) => r.reference);
      await seedDb.destroy();

      let n = 0;
      results.push(
        await run(`(h) POST /v1/payments, ${YEAR} payments`, {
          url: base,
          requests: [
            {
              method: 'POST',
              path: '/v1/payments',
              setupRequest: (req) => {
                const bill = payBills[n++ % payBills.length];
                return {
                  ...req,
                  headers: { 'content-type': 'application/json', ...auth, 'idempotency-key': `bench-year-${n}-${bill}` },
                  body: JSON.stringify({ bill_id: bill, provider: 'sandbox' }),
                };
              },
            },
          ],
        }),
      );
      if (n > payBills.length) console.warn('(h) ran out of fresh bills: later requests were refused');
      await lists(`${YEAR} payments`);
      let m = 0;
      const hts = Math.floor(Date.now() / 1000);
      results.push(
        await run(`(h) POST /v1/notify/sandbox, ${YEAR} payments`, {
          url: base,
          requests: sandboxCallbacks(() => cbRefs[m++ % cbRefs.length]!, hts),
        }),
      );
      if (m > cbRefs.length) console.warn('(h) ran out of pending payments: later callbacks were duplicates');
      scale = { rows: YEAR, seedSecs, sweepBefore, sweepAfter };
    }
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.on('exit', r));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }

  const ceiling = results.find((r) => r.name.startsWith('(a)'))?.rps ?? NaN;
  console.log(
    `\nfeegate bench: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.cpus()[0]?.model ?? ''}; Node ${process.version}; PostgreSQL; ${CONNECTIONS} connections, ${SECONDS} s each`,
  );
  console.log('| case | req/s | p50 ms | p99 ms | vs (a) | errors | non-2xx |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    console.log(`| ${r.name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${((r.rps / ceiling) * 100).toFixed(1)}% | ${r.errors} | ${r.non2xx} |`);
  }
  if (flood) {
    console.log(
      `\n(g) verifier flood: ${flood.requests} hostile documents from ${flood.connections} connections (status: ${Object.entries(flood.statuses)
        .map(([k, v]) => `${k} x${v}`)
        .join(', ')}); ` +
        (flood.answered > 0
          ? `callback p99 ${flood.quietP99} ms quiet, ${flood.floodedP99} ms flooded (${(flood.floodedP99 / flood.quietP99).toFixed(2)}x; target <= 2x)`
          : `callback p99 ${flood.quietP99} ms quiet; flooded, NO callback was answered (${flood.failed} errors/timeouts)`),
    );
  }
  if (scale) {
    console.log(
      `\n(h) ${scale.rows} payments seeded and ANALYZEd in ${scale.seedSecs.toFixed(0)} s; one pass of the bill-expiry sweep: ` +
        `${scale.sweepBefore.toFixed(2)} ms before, ${scale.sweepAfter.toFixed(2)} ms after`,
    );
  }
  if (credited.length) console.log(`\n(f) payments credited by the callbacks: ${credited.map((c) => `${c.provider} ${c.n}`).join(', ')}`);
  if (issued) {
    console.log(
      `\n(e) receipts issued by the server's outbox worker: ${issued.receipts} in total, ${Math.round(issued.rps)}/s while draining (${issued.secs.toFixed(1)} s)`,
    );
  }
  const casesRun = (process.env.BENCH_CASES ?? 'a,b,c,f,d,e').split(',');
  if (casesRun.includes('d')) {
    const d = benchSigning(Math.min(SECONDS, 5));
    console.log('\n(d) receipt signing, one core, same run:');
    console.log('| operation | per second | vs raw RSA |');
    console.log('| --- | ---: | ---: |');
    console.log(`| raw crypto.sign RSA-2048/SHA-256 (the limit) | ${Math.round(d.raw)} | 100% |`);
    console.log(`| receipt built (xmlbuilder2) | ${Math.round(d.build)} | |`);
    console.log(`| receipt built + signed (XML-DSig, 2 references) | ${Math.round(d.sign)} | ${(d.ratio * 100).toFixed(1)}% |`);
    console.log(`| receipt verified (our verifier) | ${Math.round(d.verify)} | |`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

/** autocannon requests: the sandbox provider's signed success callback for the payment that `next()` names. */
function sandboxCallbacks(next: () => string, ts: number): autocannon.Request[] {
  return [
    {
      method: 'POST',
      path: '/v1/notify/sandbox',
      setupRequest: (req) => {
        const reference = next();
        const body = withSignature(
          { merchant: 'FEEGATE-SANDBOX', reference, txn_id: `T${reference}`, status: 'SUCCESS', code: '00', amount: 1500000, currency: 'VND', paid_at: ts, ts },
          SECRET,
        );
        return { ...req, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
      },
    },
  ];
}
