/**
 * Background jobs of one gateway process. Every job is safe to run in N processes at once (row
 * locks / SKIP LOCKED), and every job is a periodic sweep, never only event-driven.
 * The outbox runs as two jobs, one per lane (outbox/lanes.ts): receipts and the other work in our
 * database never wait behind webhook deliveries, which have their own pool of slots.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Deps } from '../deps.js';
import { sealAudit } from '../audit/audit-log.js';
import { pruneIdempotencyKeys } from '../http/idempotency.js';
import { drainOutbox } from '../outbox/outbox.js';
import { DeliveryLane } from '../outbox/delivery-lane.js';
import { runJanitor } from './janitor.js';
import { runRefundChecks } from './refund-checks.js';

export interface Job {
  name: string;
  everyMs: number;
  run(deps: Deps): Promise<number>;
  /** Waits for work the job started and did not wait for (deliveries in flight). */
  stop?(): Promise<void>;
}

/** The delivery lane as a job: each tick fills the free slots; a finished delivery fills its own at once. */
function deliveriesJob(everyMs: number, log?: FastifyBaseLogger): Job {
  let lane: DeliveryLane | undefined;
  return {
    name: 'outbox-deliveries',
    everyMs,
    run: (d) => (lane ??= new DeliveryLane(d, (err) => log?.error({ job: 'outbox-deliveries', err }, 'delivery failed'))).fill(),
    stop: async () => lane?.stop(),
  };
}

export function jobs(intervalMs: number, log?: FastifyBaseLogger): Job[] {
  return [
    { name: 'outbox', everyMs: intervalMs, run: (d) => drainOutbox(d, d.handlers, { lane: 'work' }) },
    deliveriesJob(intervalMs, log),
    { name: 'janitor', everyMs: intervalMs, run: (d) => runJanitor(d) },
    { name: 'refund-checks', everyMs: intervalMs, run: (d) => runRefundChecks(d) },
    { name: 'audit-sealer', everyMs: intervalMs, run: (d) => sealAudit(d.db) },
    { name: 'idempotency-pruner', everyMs: 3_600_000, run: (d) => pruneIdempotencyKeys(d.db, d.clock) },
  ];
}

/** Starts the jobs; returns a function that stops them and waits for runs in progress. */
export function startJobs(deps: Deps, log: FastifyBaseLogger, list: Job[] = jobs(deps.config.jobIntervalMs, log)): () => Promise<void> {
  let stopped = false;
  const running = new Set<Promise<unknown>>();
  const timers = list.map((job) => {
    let busy = false;
    return setInterval(() => {
      if (stopped || busy) return;
      busy = true;
      const p = job
        .run(deps)
        .then((n) => {
          if (n > 0) log.debug({ job: job.name, n }, 'job ran');
        })
        .catch((err: unknown) => log.error({ job: job.name, err }, 'job failed'))
        .finally(() => {
          busy = false;
          running.delete(p);
        });
      running.add(p);
    }, job.everyMs);
  });
  return async () => {
    stopped = true;
    timers.forEach(clearInterval);
    await Promise.all(running);
    await Promise.all(list.map((job) => job.stop?.()));
  };
}
