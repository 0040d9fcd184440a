/**
 * The entry point: configuration, database, migrations, HTTP, background jobs, graceful shutdown.
 * `npm start` runs this on embedded PGlite under ./data with the sandbox provider.
 */
import path from 'node:path';
import { loadConfig } from './config.js';
import { createDb, migrate } from './db/knex.js';
import { buildApp } from './app.js';
import { startJobs } from './jobs/runner.js';
import { ensureDemo } from './demo.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const db = createDb({ url: config.databaseUrl, pgliteDir: path.join(config.dataDir, 'pglite'), poolMax: config.databasePoolMax });
  const applied = await migrate(db);
  const app = await buildApp({ config, db });
  if (applied.length) app.log.info({ applied }, 'migrations applied');
  await app.listen({ host: config.host, port: config.port });
  const stopJobs = config.jobs ? startJobs(app.deps, app.log) : async () => {};

  const dbLabel = config.databaseUrl ? 'PostgreSQL' : `embedded PGlite (${path.join(config.dataDir, 'pglite')})`;
  const lines = [
    '',
    `feegate ${config.mode} is listening on ${config.publicUrl} (database: ${dbLabel})`,
    `  API docs:      ${config.publicUrl}/docs   (OpenAPI: ${config.publicUrl}/openapi.json)`,
    `  Health:        ${config.publicUrl}/healthz   Metrics: ${config.publicUrl}/metrics`,
  ];
  if (config.mode === 'development' && config.sandbox) {
    const demo = await ensureDemo(app.deps);
    lines.push(
      `  Demo payment:  ${demo.payUrl ?? '(sandbox checkout unavailable)'}`,
      `  Demo API key:  ${demo.apiKey}   (test mode, admin role; saved in ${path.join(config.dataDir, 'dev-demo-api-key.txt')})`,
      `  Try:           curl -H "Authorization: Bearer ${demo.apiKey}" ${config.publicUrl}/v1/bills/${demo.billId}`,
    );
  }
  console.log(lines.join('\n') + '\n');

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await app.close();
    await stopJobs();
    await db.destroy();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
