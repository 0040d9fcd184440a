/** Prometheus metrics: one registry per app instance (tests build many). */
import client from 'prom-client';

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
  async render(): Promise<string> {
    for (const fn of this.scrapeHooks) await fn();
    return this.registry.metrics();
  }

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'feegate_' });
  }
}
