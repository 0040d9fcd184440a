/** Prometheus metrics: one registry per app instance (tests build many). */
import client from 'prom-client';

export class Metrics {
  readonly registry = new client.Registry();
  readonly httpDuration = new client.Histogram({
    name: 'feegate_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly callbacks = new client.Counter({
    name: 'feegate_callbacks_total',
    help: 'Provider callbacks by result',
    labelNames: ['provider', 'result'] as const,
    registers: [this.registry],
  });
  readonly providerCalls = new client.Counter({
    name: 'feegate_provider_calls_total',
    help: 'Calls to providers by operation and outcome',
    labelNames: ['provider', 'operation', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly outboxDead = new client.Counter({
    name: 'feegate_outbox_dead_total',
    help: 'Outbox rows parked as dead after their last attempt',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly outboxBatchFallbacks = new client.Counter({
    name: 'feegate_outbox_batch_fallbacks_total',
    help: 'Outbox batches that failed as a batch and ran row by row',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly webhookAttempts = new client.Counter({
    name: 'feegate_webhook_attempts_total',
    help: 'Merchant webhook delivery attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly janitorChecks = new client.Counter({
    name: 'feegate_janitor_checks_total',
    help: 'Status queries made by the janitor, by provider and outcome',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'feegate_' });
  }
}
