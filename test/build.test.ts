/**
 * Production runs compiled JavaScript, not tsx: `npm run build` compiles the gateway, and the
 * compiled server starts, migrates and answers; the compiled CLI runs.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, root } from './helpers/server-process.js';

const run = promisify(execFile);

t.test('the compiled gateway starts and answers', async (t) => {
  const out = path.join(root, `.build-test-${process.pid}`); // inside the project, so node_modules resolve
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'feegate-build-'));
  t.teardown(() => {
    fs.rmSync(out, { recursive: true, force: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  await run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', out], { cwd: root });
  t.ok(fs.existsSync(path.join(out, 'gateway/server.js')), 'npm run build writes the server');

  const cli = await run(process.execPath, [path.join(out, 'gateway/cli/main.js'), 'errors'], {
    cwd: os.tmpdir(),
    env: { ...process.env, FEEGATE_DATA_DIR: dataDir },
  });
  t.match(cli.stdout, /FEEGATE_ERR_VALIDATION/, 'the compiled CLI runs');

  const port = await freePort();
  const child = spawn(process.execPath, [path.join(out, 'gateway/server.js')], {
    cwd: os.tmpdir(),
    env: { ...process.env, PORT: String(port), FEEGATE_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  const deadline = Date.now() + 120_000;
  while (!/Demo payment:/.test(log)) {
    if (Date.now() > deadline || child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.match(log, /listening on/, 'the compiled server starts');
  t.notMatch(log, /tsx/, 'without tsx');
  const health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
  t.equal(health?.status, 200, '/healthz answers');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'and stops cleanly');
});
