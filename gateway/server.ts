/**
 * The entry point: configuration, database, migrations, HTTP, background jobs, graceful shutdown.
 * `npm start` runs this on embedded PGlite under ./data with the sandbox provider.
 */
import cluster from 'node:cluster';
import path from 'node:path';
import { loadConfig, type Config } from './config.js';
import { createDb, migrate, type Db } from './db/knex.js';
import { isDatabaseNotReadyYet } from './db/unavailable.js';
import { buildMetricsServer, metricsOnApi } from './http/metrics.js';
import { buildApp } from './app.js';
import { startJobs } from './jobs/runner.js';
import { ensureDemo } from './demo.js';
import { withMasterKey } from './secrets/dev-master-key.js';
import { systemClock } from './clock.js';
import { fetchHttpClient } from '../adapters/http-client.js';
import { serveSimulators } from '../adapters/sandbox-mode.js';

/** A delay in seconds with one decimal, for log lines (integer arithmetic: no float formatting here). */
const seconds = (ms: number) => `${Math.floor(ms / 1000)}.${Math.floor((ms % 1000) / 100)}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Migrations, once the database answers. A database that is down, still starting, or not created
 * yet is waited for (a log line each try, backoff from 0.5 s doubling up to 30 s, with jitter so a
 * fleet does not knock in step) instead of exiting: an orchestrator that starts us before the
 * database gets a gateway that comes up when it does. Any other error (a bad password, a failed
 * migration) is not going to pass by waiting: it stops the start.
 */
async function migrateWhenReady(db: Db): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrate(db);
    } catch (err) {
      if (!isDatabaseNotReadyYet(err)) throw err;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 10)) * (0.8 + Math.random() * 0.4);
      const why = err instanceof Error ? `${(err as { code?: string }).code ?? err.name}: ${err.message.split('\n')[0]}` : String(err);
      console.error(`database not ready (attempt ${attempt}, ${why}); retrying in ${seconds(delay)} s`);
      await sleep(delay);
    }
  }
}

/**
 * With FEEGATE_WORKERS=N: migrate once, then N workers share the port; each is a full gateway.
 * In sandbox mode the primary also serves the simulators (one process, so one state: an order
 * created through one worker is found when the payer's POST reaches another) and points the
 * workers at them. A worker that dies is forked again after a backoff; only workers dying in a
 * tight loop (more than RESTARTS_PER_MINUTE deaths in a minute, or one per worker if more) stop
 * the gateway.
 */
const RESTARTS_PER_MINUTE = 5;
async function primary(config: Config): Promise<void> {
  const db = createDb({ url: config.databaseUrl, poolMax: 2 });
  await migrateWhenReady(db);
  await db.destroy();
  const sim =
    config.sandbox && !config.sandboxUrl
      ? await serveSimulators({
          secret: config.sandboxSecret,
          gatewayUrl: config.publicUrl,
          host: config.host,
          port: config.sandboxPort,
          http: fetchHttpClient,
          clock: systemClock,
          logLevel: config.logLevel,
        })
      : undefined;
  const env = sim ? { FEEGATE_SANDBOX_URL: sim.url } : {};
  if (sim) console.log(`simulators (sandbox mode, shared by the workers) on ${sim.url}/sandbox`);

  const indexOf = new Map<number, number>(); // cluster worker id → FEEGATE_WORKER_INDEX
  const fork = (index: number) => {
    const w = cluster.fork({ ...env, FEEGATE_WORKER_INDEX: String(index) });
    indexOf.set(w.id, index);
    console.log(`worker ${index} started (pid ${w.process.pid})`);
  };
  for (let i = 0; i < config.workers; i++) fork(i);

  let stopping = false;
  let failed = false;
  const pending = new Set<NodeJS.Timeout>();
  const stop = () => {
    stopping = true;
    for (const t of pending) clearTimeout(t);
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    if (Object.keys(cluster.workers ?? {}).length === 0) void finish();
  };
  const finish = async () => {
    await sim?.close().catch(() => {});
    process.exit(failed ? 1 : 0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  let deaths: number[] = [];
  cluster.on('exit', (w, code, signal) => {
    const index = indexOf.get(w.id) ?? 0;
    indexOf.delete(w.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) void finish();
      return;
    }
    const now = Date.now();
    deaths = [...deaths.filter((t) => now - t < 60_000), now];
    const why = signal ? `signal ${signal}` : `code ${code}`;
    if (deaths.length > Math.max(RESTARTS_PER_MINUTE, config.workers)) {
      console.error(`worker ${index} (pid ${w.process.pid}) exited (${why}); ${deaths.length} deaths in a minute: stopping`);
      failed = true;
      return stop();
    }
    // 0.5 s, 1 s, 2 s … 30 s by recent deaths: a crash loop backs off, a one-off comes back at once.
    const delay = Math.min(30_000, 500 * 2 ** (deaths.length - 1));
    console.error(`worker ${index} (pid ${w.process.pid}) exited (${why}); restarting in ${seconds(delay)} s`);
    const t = setTimeout(() => {
      pending.delete(t);
      if (!stopping) fork(index);
    }, delay);
    pending.add(t);
  });
}

/**
 * FEEGATE_HTTP=false (`npm run jobs`): a process that runs only the background jobs (outbox and
 * receipts, janitor, refund checks, audit sealer, pruner) and serves no HTTP, beside API processes
 * started with FEEGATE_JOBS=false. The jobs then take no CPU from requests (on 2 cores, payment
 * creation +22% and callbacks +83%). Every job is safe in N processes (row locks, SKIP LOCKED), so
 * a second jobs process is a spare, not a risk. PostgreSQL only: PGlite is one process.
 */
async function jobsOnly(config: Config): Promise<void> {
  if (!config.jobs) throw new Error('FEEGATE_HTTP=false with FEEGATE_JOBS=false: this process would do nothing');
  if (!config.databaseUrl) throw new Error('FEEGATE_HTTP=false (a jobs process of its own) needs DATABASE_URL: embedded PGlite is one process');
  const db = createDb({ url: config.databaseUrl, poolMax: config.databasePoolMax });
  await migrateWhenReady(db);
  const app = await buildApp({ config, db }); // the same dependencies as an API process; it never listens
  const metricsServer = config.metricsListen ? await buildMetricsServer(app.deps.metrics, config, app.log) : undefined;
  if (metricsServer) await metricsServer.listen(config.metricsListen!);
  if (config.mode === 'development') app.deps.certs.dev();
  const stopJobs = startJobs(app.deps, app.log);
  console.log(
    `\nfeegate ${config.mode} jobs process: no HTTP; outbox, janitor, refund checks, audit sealer on PostgreSQL` +
      `${metricsServer ? `; metrics ${metricsUrl(config.metricsListen!)}` : ''}\n`,
  );
  registerShutdown(app, db, async () => {
    await metricsServer?.close();
    await stopJobs();
  });
}

async function main(): Promise<void> {
  const config = withMasterKey(loadConfig());
  if (!config.http) return jobsOnly(config);
  if (config.workers > 1 && cluster.isPrimary) return primary(config);
  const first = (process.env.FEEGATE_WORKER_INDEX ?? '0') === '0';
  const db = createDb({ url: config.databaseUrl, pgliteDir: path.join(config.dataDir, 'pglite'), poolMax: config.databasePoolMax });
  const applied = cluster.isPrimary ? await migrateWhenReady(db) : [];
  const app = await buildApp({ config, db });
  if (applied.length) app.log.info({ applied }, 'migrations applied');
  await app.listen({ host: config.host, port: config.port });
  const metricsServer = config.metricsListen ? await buildMetricsServer(app.deps.metrics, config, app.log) : undefined;
  if (metricsServer) await metricsServer.listen(config.metricsListen!);
  const stopJobs = config.jobs ? startJobs(app.deps, app.log) : async () => {};
  const stop = async () => {
    await metricsServer?.close();
    await stopJobs();
  };

  if (!first) return registerShutdown(app, db, stop);
  const metricsOn = metricsOnApi(config);
  const metricsLabel = metricsServer
    ? `${metricsUrl(config.metricsListen!)} (its own address${config.metricsToken ? ', bearer token' : ''})`
    : metricsOn === 'off'
      ? 'off (production: set FEEGATE_METRICS_TOKEN or FEEGATE_METRICS_LISTEN)'
      : `${config.publicUrl}/metrics${metricsOn === 'token' ? ' (bearer token)' : ''}`;
  const dbLabel = config.databaseUrl ? 'PostgreSQL' : `embedded PGlite (${path.join(config.dataDir, 'pglite')})`;
  const lines = [
    '',
    `feegate ${config.mode} is listening on ${config.publicUrl} (database: ${dbLabel})`,
    `  API docs:      ${config.publicUrl}/docs   (OpenAPI: ${config.publicUrl}/openapi.json)`,
    `  Health:        ${config.publicUrl}/healthz   Metrics: ${metricsLabel}`,
  ];
  if (config.mode === 'development') {
    app.deps.certs.dev(); // the dev CA: created on first start
    const caDir = config.devCaDir ?? path.join(config.dataDir, 'dev-ca');
    lines.push(`  Receipts:      signed with dev CA certificates; trust anchor ${path.join(caDir, 'dev-ca-cert.pem')} (development only)`);
  }
  if (config.mode === 'development' && config.sandbox) {
    const demo = await ensureDemo(app.deps);
    lines.push(
      `  Demo payment:  ${demo.payUrl ?? '(sandbox checkout unavailable)'}`,
      `  Demo API key:  ${demo.apiKey}   (test mode, admin role; saved in ${path.join(config.dataDir, 'dev-demo-api-key.txt')})`,
      `  Try:           curl -H "Authorization: Bearer ${demo.apiKey}" ${config.publicUrl}/v1/bills/${demo.billId}`,
    );
  }
  if (config.workers > 1) lines.push(`  Workers:       ${config.workers} processes`);
  console.log(lines.join('\n') + '\n');
  registerShutdown(app, db, stop);
}

function metricsUrl(listen: { host: string; port: number }): string {
  return `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}/metrics`;
}

function registerShutdown(app: Awaited<ReturnType<typeof buildApp>>, db: ReturnType<typeof createDb>, stopJobs: () => Promise<void>): void {
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
