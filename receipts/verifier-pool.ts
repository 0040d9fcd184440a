/**
 * Receipt verification off the event loop: the public verifier (and the lookup page) hand the XML
 * to a small piscina worker pool, so a stranger's document never holds up a callback or an API
 * call. The workers run at a lower CPU priority (nice +10, Linux/macOS through piscina's optional
 * @napi-rs/nice): on a busy machine paying traffic goes first. The queue is bounded: when it is full the request
 * is refused at once (503 FEEGATE_ERR_VERIFIER_BUSY with Retry-After) instead of piling up memory.
 *
 * One pool per process (and settings), started on first use and kept warm; its idle threads are
 * unref'd by piscina, so they never keep a process alive. Apps built in the same process (tests)
 * share it instead of paying a thread start each. The worker file is the .ts next to
 * this one under tsx (dev, tap: workers inherit --import tsx) and the .js once compiled.
 */
import { Piscina } from 'piscina';
import { FeegateError } from '../gateway/errors.js';
import type { VerificationReport } from './verify.js';
import type { VerifyOutcome, VerifyTask } from './verify-worker.js';

export interface VerifierPoolOptions {
  /** Worker threads (at most this many receipts are verified at once). */
  threads: number;
  /** Receipts waiting for a thread before new ones are refused. */
  queue: number;
}

/** Seconds a refused client is told to wait (Retry-After). */
export const BUSY_RETRY_AFTER_SECONDS = 2;

/**
 * CPU priority of the workers: nice +10 gives a verifier thread about a tenth of a core that the
 * event loop (or PostgreSQL) wants, and all of an idle one.
 */
const NICE = 10;

const busy = (queue: number) =>
  new FeegateError('FEEGATE_ERR_VERIFIER_BUSY', `The receipt verifier has ${queue} receipts waiting; retry in ${BUSY_RETRY_AFTER_SECONDS} s`, {
    retry_after_seconds: BUSY_RETRY_AFTER_SECONDS,
  });

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER = new URL(`./verify-worker${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url).href;
/**
 * The workers get only what they need: the TypeScript loader when running from source. Inheriting
 * the parent's flags would load a test runner's instrumentation into every thread (15 s to start
 * one under tap on a busy machine, against 4 s with tsx alone).
 */
const WORKER_ARGV = FROM_SOURCE ? ['--import', 'tsx'] : [];

export class VerifierPool {
  private pool?: Piscina<VerifyTask, VerifyOutcome>;
  constructor(private readonly opts: VerifierPoolOptions) {}

  async verify(xml: string, anchors: string[]): Promise<VerificationReport> {
    this.pool ??= new Piscina<VerifyTask, VerifyOutcome>({
      filename: WORKER,
      minThreads: Math.max(1, this.opts.threads),
      maxThreads: Math.max(1, this.opts.threads),
      maxQueue: this.opts.queue,
      niceIncrement: NICE,
      execArgv: WORKER_ARGV,
    });
    if (this.pool.queueSize >= this.opts.queue) {
      throw busy(this.opts.queue);
    }
    let out: VerifyOutcome;
    try {
      out = await this.pool.run({ xml, anchors });
    } catch (err) {
      if (/queue is at limit/i.test((err as Error).message)) throw busy(this.opts.queue);
      throw err;
    }
    if ('refused' in out) throw new FeegateError(out.refused.code, out.refused.message, out.refused.details);
    return out.report;
  }

  /** Receipts this pool has verified (or refused) so far. */
  get completed(): number {
    return this.pool?.completed ?? 0;
  }

  async close(): Promise<void> {
    const p = this.pool;
    this.pool = undefined;
    await p?.destroy();
  }
}

const shared = new Map<string, VerifierPool>();

/** The process's pool for these settings. */
export function verifierPool(opts: VerifierPoolOptions): VerifierPool {
  const key = `${opts.threads}/${opts.queue}`;
  let pool = shared.get(key);
  if (!pool) shared.set(key, (pool = new VerifierPool(opts)));
  return pool;
}
