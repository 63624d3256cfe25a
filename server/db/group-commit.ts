type Pending<T, R> = { item: T; resolve: (r: R) => void; reject: (e: unknown) => void };

/**
 * Group commit: writes submitted while a flush is in flight wait for it and then go together in
 * one statement, so many concurrent requests cost a few round trips instead of one each (on PGlite
 * every statement runs one at a time). A lone write goes at once. Batches are cut in submission
 * order and flushed one at a time, so writes reach the database in the order they were made.
 * Each caller's promise settles only when its write is committed: nothing is acknowledged before
 * it is durable.
 *
 * One caller's bad write must not fail the others that happened to share its statement: when a
 * batch fails, its items are written again one at a time (in order, before the next batch), and
 * only those that fail alone are rejected. `flush` must therefore be all-or-nothing (one statement
 * or one transaction), so a failed batch left nothing behind.
 */
export class GroupCommit<T, R> {
  private queue: Array<Pending<T, R>> = [];
  private flushing = false;

  constructor(
    /** Writes the items in one statement (or transaction); answers one result per item, in order. */
    private readonly flush: (items: T[]) => Promise<R[]>,
    /** Most weight per batch (a batch always takes at least one item). */
    private readonly maxBatch = 500,
    /** An item's weight: 1 each by default; e.g. the number of rows it writes. */
    private readonly weight: (item: T) => number = () => 1,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // At once (what the caller submits in the same turn joins): an idle database should not
        // wait for the event loop's turn; what arrives while this flush is in flight forms the next.
        queueMicrotask(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      let take = 0;
      for (let size = 0; take < this.queue.length && (take === 0 || size + this.weight(this.queue[take]!.item) <= this.maxBatch); take++) {
        size += this.weight(this.queue[take]!.item);
      }
      const batch = this.queue.splice(0, take);
      try {
        const results = await this.flush(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]!));
      } catch (err) {
        if (batch.length === 1) batch[0]!.reject(err);
        else for (const b of batch) await this.flushAlone(b);
      }
      // Let the requests that came in meanwhile reach the queue before the next batch is cut.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.flushing = false;
  }

  private async flushAlone(b: Pending<T, R>): Promise<void> {
    try {
      const [result] = await this.flush([b.item]);
      b.resolve(result!);
    } catch (err) {
      b.reject(err);
    }
  }
}
