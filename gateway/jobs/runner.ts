/**
 * Background jobs of one gateway process. Every job is safe to run in N processes at once (row
 * locks / SKIP LOCKED), and every job is a periodic sweep, never only event-driven.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Deps } from '../deps.js';
import { sealAudit } from '../audit/audit-log.js';
import { pruneIdempotencyKeys } from '../http/idempotency.js';
import { drainOutbox } from '../outbox/outbox.js';
import { runJanitor } from './janitor.js';
import { runRefundChecks } from './refund-checks.js';

export interface Job {
  name: string;
  everyMs: number;
  run(deps: Deps): Promise<number>;
}

export function jobs(intervalMs: number): Job[] {
  return [
    { name: 'outbox', everyMs: intervalMs, run: (d) => drainOutbox(d, d.handlers) },
    { name: 'janitor', everyMs: intervalMs, run: (d) => runJanitor(d) },
    { name: 'refund-checks', everyMs: intervalMs, run: (d) => runRefundChecks(d) },
    { name: 'audit-sealer', everyMs: intervalMs, run: (d) => sealAudit(d.db) },
    { name: 'idempotency-pruner', everyMs: 3_600_000, run: (d) => pruneIdempotencyKeys(d.db, d.clock) },
  ];
}

/** Starts the jobs; returns a function that stops them and waits for runs in progress. */
export function startJobs(deps: Deps, log: FastifyBaseLogger, list: Job[] = jobs(deps.config.jobIntervalMs)): () => Promise<void> {
  let stopped = false;
  const running = new Set<Promise<unknown>>();
  const timers = list.map((job) => {
    let busy = false;
    return setInterval(() => {
      if (stopped || busy) return;
      busy = true;
      const p = job
        .run(deps)
        .then((n) => { if (n > 0) log.debug({ job: job.name, n }, 'job ran'); })
        .catch((err: unknown) => log.error({ job: job.name, err }, 'job failed'))
        .finally(() => { busy = false; running.delete(p); });
      running.add(p);
    }, job.everyMs);
  });
  return async () => {
    stopped = true;
    timers.forEach(clearInterval);
    await Promise.all(running);
  };
}
