/**
 * The delivery lane's runner: a pool of `webhookConcurrency` slots. A slot freed by a finished
 * delivery is filled at once (not after the slowest of a batch), with due rows of endpoints under
 * their limit (lanes.ts claimDeliveries). Nothing here waits in a database transaction for an
 * endpoint, and the work lane runs apart (jobs/runner.ts), so receipts never wait for a delivery.
 */
import type { Deps } from '../deps.js';
import { claimDeliveries, deliveryLeaseSeconds } from './lanes.js';
import { runRow, type OutboxRow } from './outbox.js';

export class DeliveryLane {
  private readonly running = new Set<Promise<void>>();
  private claiming: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly deps: Deps,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  /** Deliveries in flight in this process. */
  get inFlight(): number {
    return this.running.size;
  }

  /**
   * Fills free slots with due deliveries; returns how many it started. One claim at a time: a
   * call during a claim makes that claim look again when it ends.
   */
  async fill(): Promise<number> {
    if (this.stopped) return 0;
    if (this.claiming) {
      this.again = true;
      return 0;
    }
    let started = 0;
    const claim = (async () => {
      do {
        this.again = false;
        const free = this.deps.config.webhookConcurrency - this.running.size;
        if (free <= 0 || this.stopped) break;
        const rows = await claimDeliveries(this.deps.db, this.deps.clock, {
          limit: free,
          perEndpoint: this.deps.config.webhookEndpointConcurrency,
          leaseSeconds: deliveryLeaseSeconds(this.deps.config),
        });
        rows.forEach((row) => this.start(row));
        started += rows.length;
      } while (this.again);
    })();
    this.claiming = claim;
    try {
      await claim;
    } catch (err) {
      this.onError(err);
    } finally {
      this.claiming = undefined;
    }
    return started;
  }

  private start(row: OutboxRow): void {
    const p: Promise<void> = runRow(this.deps, this.deps.handlers, row)
      .then(() => {}, this.onError)
      .finally(() => {
        this.running.delete(p);
        void this.fill();
      });
    this.running.add(p);
  }

  /** Starts nothing more and waits for the deliveries in flight (each ends by its timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.claiming?.catch(() => {});
    while (this.running.size) await Promise.all(this.running);
  }
}
