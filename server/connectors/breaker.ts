/**
 * The per-instance guards in front of the executor: a token bucket per instance (so one busy
 * caller cannot spend a peer's quota for everyone) and the streak of consecutive transient
 * failures that trips the circuit breaker. Both are per gateway process; the breaker's tripped
 * state itself is the instance's `degraded` status in the database, which every gateway sees.
 */

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    /** Calls per minute per instance; also the burst. 0 turns the limit off. */
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token; when none is left, the seconds until one is. */
  take(key: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
    if (this.perMinute <= 0) return { ok: true };
    const now = this.now();
    const perMs = this.perMinute / 60_000;
    const bucket = this.buckets.get(key) ?? { tokens: this.perMinute, at: now };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * perMs);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000)) };
  }

  forget(key: string): void {
    this.buckets.delete(key);
  }
}

export class FailureStreaks {
  private readonly streaks = new Map<string, number>();

  constructor(private readonly threshold: number) {}

  /** Counts a transient failure; true when this one reached the threshold. */
  failed(key: string): boolean {
    const n = (this.streaks.get(key) ?? 0) + 1;
    this.streaks.set(key, n);
    return this.threshold > 0 && n >= this.threshold;
  }

  succeeded(key: string): void {
    this.streaks.delete(key);
  }
}
