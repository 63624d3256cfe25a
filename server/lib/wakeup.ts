/**
 * The pause between two rounds of a polling loop (dispatcher, command runner) that `wake()` cuts
 * short. A wake that comes during a round is kept, so the next pause is skipped: work announced
 * while the loop was busy is never left waiting for the next poll.
 */
export class Wakeup {
  private woken = false;
  private cut: (() => void) | undefined;

  /** Ends the current pause, or skips the next one. */
  wake(): void {
    this.woken = true;
    this.cut?.();
  }

  /** At the start of a round: wakes so far are served by it. */
  begin(): void {
    this.woken = false;
  }

  /** Whether the loop was woken since the round began. */
  get pending(): boolean {
    return this.woken;
  }

  /** Waits `ms`, or until woken; at once when woken already. */
  pause(ms: number): Promise<void> {
    if (this.woken) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.cut = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.cut = done;
    });
  }
}
