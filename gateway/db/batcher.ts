/**
 * Natural batching: calls that arrive while earlier batches are being written wait and go
 * together in the next one, so under load many requests share one statement and one commit, and
 * with no load a call goes alone at once (no timer, no added latency).
 *
 * One bad item never fails the others: when a batch of several fails as a whole, each of its
 * items is written again on its own, and only an item that fails alone is rejected. So `write`
 * must be all or nothing for a batch (one statement, or one transaction), which makes writing an
 * item again after its batch failed safe.
 */
export interface BatcherOptions<In> {
  maxBatch?: number;
  maxConcurrent?: number;
  /** Told when a batch of several failed and its items go one by one (for a metric and a log line). */
  onBatchFailed?: (err: unknown, items: In[]) => void;
}

export class Batcher<In, Out> {
  private queue: { item: In; resolve: (o: Out) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;
  private readonly maxBatch: number;
  private readonly maxConcurrent: number;

  constructor(
    private readonly write: (items: In[]) => Promise<Out[]>,
    private readonly opts: BatcherOptions<In> = {},
  ) {
    this.maxBatch = opts.maxBatch ?? 64;
    this.maxConcurrent = opts.maxConcurrent ?? 4;
  }

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.running < this.maxConcurrent) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running++;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const out = await this.write(batch.map((b) => b.item));
          batch.forEach((b, i) => b.resolve(out[i]!));
        } catch (err) {
          if (batch.length === 1) {
            batch[0]!.reject(err);
            continue;
          }
          this.opts.onBatchFailed?.(
            err,
            batch.map((b) => b.item),
          );
          for (const b of batch) {
            try {
              b.resolve((await this.write([b.item]))[0]!);
            } catch (alone) {
              b.reject(alone);
            }
          }
        }
      }
    } finally {
      this.running--;
    }
  }
}
