/** The README contract: `npm start` runs the gateway, prints where to go, and the demo payment works. */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openTestDb, postgresAvailable } from './helpers/db.js';
import { freePort, root, startServer } from './helpers/server-process.js';

async function clickThrough(t: Test, out: string) {
  const payUrl = /Demo payment: +(\S+)/.exec(out)?.[1];
  const apiKey = /Demo API key: +(\S+)/.exec(out)?.[1];
  t.ok(payUrl && apiKey, 'prints the demo payment and key');
  const docsUrl = /API docs: +(\S+)/.exec(out)![1]!;
  t.equal((await fetch(docsUrl)).status, 200, 'the API docs answer');
  const page = await (await fetch(payUrl!)).text();
  t.match(page, /Sandbox provider/);
  // Pay as a person would: press "Pay" on the provider's page (its form), follow the redirects.
  const action = /<form method="post" action="([^"]+)"/.exec(page)?.[1];
  t.ok(action, 'the page has a payment form');
  const back = await fetch(new URL(action!, payUrl), { method: 'POST', body: new URLSearchParams({ result: 'success' }) });
  t.equal(back.status, 200);
  t.match(await back.text(), /Thanh toán thành công/, 'the return page shows success');
  const payments = await (await fetch(new URL('/v1/payments?limit=1', payUrl).toString(), { headers: { authorization: `Bearer ${apiKey}` } })).json();
  t.equal(payments.data[0].status, 'succeeded');
}

t.test('npm start on the embedded database', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-start-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const server = await startServer({ PORT: String(port), FEEGATE_DATA_DIR: dataDir });
  t.match(server.out(), new RegExp(`listening on http://127.0.0.1:${port} \\(database: embedded PGlite`));
  await clickThrough(t, server.out());
  t.equal(await server.stop(), 0, 'SIGTERM shuts down cleanly');
  t.ok(fs.existsSync(path.join(dataDir, 'pglite')), 'data lives under the data directory');

  // A second start reuses the data and the demo key.
  const again = await startServer({ PORT: String(port), FEEGATE_DATA_DIR: dataDir });
  t.equal(/Demo API key: +(\S+)/.exec(again.out())?.[1], /Demo API key: +(\S+)/.exec(server.out())?.[1]);
  t.equal(await again.stop(), 0);
});

t.test('DATABASE_URL switches to PostgreSQL', async (t) => {
  if (!(await postgresAvailable())) {
    if (process.env.CI === 'true') t.fail('PostgreSQL is not reachable (CI=true)');
    else t.plan(0, 'skip: PostgreSQL not reachable');
    return;
  }
  const pg = await openTestDb('postgres');
  t.teardown(() => pg.close());
  await pg.db.destroy();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-start-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const server = await startServer({ PORT: String(await freePort()), FEEGATE_DATA_DIR: dataDir, DATABASE_URL: pg.url! });
  t.match(server.out(), /\(database: PostgreSQL\)/);
  await clickThrough(t, server.out());
  t.equal(await server.stop(), 0);
});

t.test('production mode refuses the sandbox', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/server.ts'], {
    cwd: root,
    env: { ...process.env, FEEGATE_MODE: 'production', FEEGATE_SANDBOX: 'true', DATABASE_URL: 'postgres://127.0.0.1:1/none' },
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  t.equal(code, 1);
  t.match(err, /refuses the sandbox/);
});
