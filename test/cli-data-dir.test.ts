/** The CLI and the embedded database: one process owns the data directory; the default one is the project's. */
import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, root, startServer } from './helpers/server-process.js';

async function cliRun(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [path.join(root, 'gateway/cli/bin.mjs'), ...args], {
    cwd,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return { code: await new Promise<number | null>((r) => child.on('exit', r)), out };
}

t.test('the CLI never writes to a second copy of a running embedded database', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-lock-'));
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-cwd-'));
  t.teardown(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(elsewhere, { recursive: true, force: true });
  });
  const server = await startServer({ PORT: String(await freePort()), FEEGATE_DATA_DIR: dataDir });
  const refused = await cliRun(
    ['tenants', 'create', '--code', 'lost-ward', '--name', 'Phường Mất', '--tax-code', '0101234568'],
    { FEEGATE_DATA_DIR: dataDir },
    elsewhere,
  );
  t.not(refused.code, 0, 'refused while the server holds the data directory');
  t.match(refused.out, /in use by another feegate process/, 'says why');
  t.match(refused.out, /Stop that process|DATABASE_URL/, 'and names the fix');
  t.same(fs.readdirSync(elsewhere), [], 'and creates nothing where it was run');
  t.equal(await server.stop(), 0);

  const created = await cliRun(
    ['tenants', 'create', '--code', 'kept-ward', '--name', 'Phường Giữ', '--tax-code', '0101234568'],
    { FEEGATE_DATA_DIR: dataDir },
    elsewhere,
  );
  t.equal(created.code, 0, created.out);
  const again = await startServer({ PORT: String(await freePort()), FEEGATE_DATA_DIR: dataDir });
  t.equal(await again.stop(), 0);
  const listed = await cliRun(['tenants', 'list'], { FEEGATE_DATA_DIR: dataDir }, elsewhere);
  t.match(listed.out, /kept-ward/, 'what the CLI wrote with the server stopped is still there after a server run');
});

t.test("the default data directory is the project's, wherever the command runs", async (t) => {
  const { projectRoot, loadConfig } = await import('../gateway/config.js');
  t.equal(projectRoot(path.join(root, 'gateway', 'cli')), root);
  const cwd = process.cwd();
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-cwd-'));
  t.teardown(() => {
    process.chdir(cwd);
    fs.rmSync(elsewhere, { recursive: true, force: true });
  });
  process.chdir(elsewhere);
  t.equal(loadConfig({}).dataDir, path.join(root, 'data'));
});
