/**
 * Group commit: writes submitted while a flush is in flight wait for it and then go together in
 * one statement, so many concurrent requests cost a few round trips instead of one each (on PGlite
 * every statement runs one at a time). A lone write goes at once. Each caller's promise settles
 * only when its write is committed: nothing is acknowledged before it is durable.
 */
export class GroupCommit<T, R> {
  private queue: Array<{ item: T; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private flushing = false;

  constructor(
    /** Writes the items in one statement; answers one result per item, in order. */
    private readonly flush: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 500,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // After the I/O callbacks already due: requests that arrived together join the first batch.
        // (A PGlite statement runs synchronously, so nothing can join while one is in flight.)
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const results = await this.flush(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]!));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
      // Let the requests that came in meanwhile reach the queue before the next batch is cut.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.flushing = false;
  }
}
