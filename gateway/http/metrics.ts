/**
 * Prometheus metrics: one registry per app instance (tests build many), and who may read them.
 * The metrics name every unit code and certificate serial, so in production they are not public:
 * a bearer token (FEEGATE_METRICS_TOKEN), or a listen address of their own (FEEGATE_METRICS_LISTEN,
 * a small server with nothing else on it), or nothing at all.
 */
import crypto from 'node:crypto';
import client from 'prom-client';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { FeegateError } from '../errors.js';

export class Metrics {
  readonly registry = new client.Registry();

  private counter<L extends string>(name: string, help: string, labelNames: readonly L[]) {
    return new client.Counter<L>({ name: `feegate_${name}_total`, help, labelNames, registers: [this.registry] });
  }

  readonly httpDuration = new client.Histogram({
    name: 'feegate_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly callbacks = this.counter('callbacks', 'Provider callbacks by result', ['provider', 'result']);
  readonly providerCalls = this.counter('provider_calls', 'Calls to providers by operation and outcome', ['provider', 'operation', 'outcome']);
  readonly outboxDead = this.counter('outbox_dead', 'Outbox rows parked as dead after their last attempt', ['kind']);
  readonly outboxBatchFallbacks = this.counter('outbox_batch_fallbacks', 'Outbox batches that failed as a batch and ran row by row', ['kind']);
  readonly callbackBatchFallbacks = this.counter('callback_batch_fallbacks', 'Callbacks applied alone because their batch failed as a whole', ['provider']);
  readonly webhookAttempts = this.counter('webhook_attempts', 'Merchant webhook delivery attempts by outcome', ['outcome']);
  readonly janitorChecks = this.counter('janitor_checks', 'Status queries made by the janitor, by provider and outcome', ['provider', 'outcome']);
  readonly receiptsIssued = this.counter('receipts_issued', 'Signed receipts issued, by kind (original, adjustment)', ['kind']);
  /** Days until each active signing certificate expires; filled at scrape time (see watchCertificates). */
  readonly certDaysLeft = new client.Gauge({
    name: 'feegate_signing_cert_days_left',
    help: 'Days until the active signing certificate of a unit expires (alert when below CERT_WARN_DAYS)',
    labelNames: ['tenant', 'serial', 'expiring_soon'] as const,
    registers: [this.registry],
  });

  /** Registers a function run before each scrape (for gauges read from the database). */
  onScrape(fn: () => Promise<void>): void {
    this.scrapeHooks.push(fn);
  }
  private readonly scrapeHooks: (() => Promise<void>)[] = [];
  /** A hook that fails (the database is down) leaves its gauges as they were: the rest still renders. */
  async render(): Promise<string> {
    for (const fn of this.scrapeHooks) {
      try {
        await fn();
      } catch {
        this.scrapeHookFailures.inc();
      }
    }
    return this.registry.metrics();
  }
  readonly scrapeHookFailures = this.counter('scrape_hook_failures', 'Scrapes where a gauge could not be refreshed from the database', []);

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'feegate_' });
  }
}

/** Where the main API server serves /metrics: openly, behind the token, or not at all. */
export function metricsOnApi(config: Config): 'public' | 'token' | 'off' {
  if (config.metricsListen) return 'off'; // on its own address only
  if (config.metricsToken) return 'token';
  return config.mode === 'production' ? 'off' : 'public';
}

function sha256(s: string): Buffer {
  return crypto.createHash('sha256').update(s, 'utf8').digest();
}

/** Bearer token check; hashing first gives timingSafeEqual equal lengths and hides the token's. */
function tokenGuard(token: string) {
  const expected = sha256(token);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const m = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
    if (m && crypto.timingSafeEqual(sha256(m[1]!), expected)) return;
    reply.header('www-authenticate', 'Bearer realm="metrics"');
    throw new FeegateError(m ? 'FEEGATE_ERR_AUTH_INVALID' : 'FEEGATE_ERR_AUTH_MISSING', 'The metrics need Authorization: Bearer <FEEGATE_METRICS_TOKEN>');
  };
}

/** Adds GET /metrics to `app`, guarded by the token when one is configured. */
export function addMetricsRoute(app: FastifyInstance, metrics: Metrics, token: string | undefined, schema: Record<string, unknown> = {}): void {
  app.get(
    '/metrics',
    {
      config: { auth: false, rateLimit: false },
      schema,
      ...(token ? { onRequest: tokenGuard(token) } : {}),
    },
    async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.render()),
  );
}

/** The server for FEEGATE_METRICS_LISTEN: /metrics and nothing else. */
export async function buildMetricsServer(metrics: Metrics, config: Config, logger: FastifyBaseLogger): Promise<FastifyInstance> {
  const server = Fastify({ loggerInstance: logger.child({ server: 'metrics' }) as FastifyBaseLogger });
  server.setNotFoundHandler((_req, reply) => {
    reply.code(404).send(new FeegateError('FEEGATE_ERR_NOT_FOUND', 'This address serves GET /metrics only').toJSON());
  });
  server.setErrorHandler((error, req, reply) => {
    const err = error instanceof FeegateError ? error : new FeegateError('FEEGATE_ERR_INTERNAL');
    if (err.statusCode >= 500) req.log.error({ err: error }, 'metrics failed');
    reply.code(err.statusCode).send(err.toJSON());
  });
  addMetricsRoute(server, metrics, config.metricsToken);
  await server.ready();
  return server;
}
