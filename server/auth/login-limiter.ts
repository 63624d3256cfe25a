import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';

const FAILURE_WINDOW_SECONDS = 60 * 60;
const FIRST_LOCKOUT_SECONDS = 30;
const MAX_LOCKOUT_SECONDS = 15 * 60;

/** Counts failures for one kind of key and locks the key out once it has had its free tries. */
class FailureGuard {
  // Counts failures within the window; never rejects by itself.
  private readonly failures: RateLimiterMemory;
  // A key is locked out while it has a block here.
  private readonly lockout: RateLimiterMemory;

  constructor(
    name: string,
    private readonly freeFailures: number,
  ) {
    this.failures = new RateLimiterMemory({ keyPrefix: `${name}_failures`, points: Number.MAX_SAFE_INTEGER, duration: FAILURE_WINDOW_SECONDS });
    this.lockout = new RateLimiterMemory({ keyPrefix: `${name}_lockout`, points: 1, duration: 1 });
  }

  async lockedForMs(key: string): Promise<number> {
    const res = await this.lockout.get(key);
    return res && res.consumedPoints > 1 ? res.msBeforeNext : 0;
  }

  async fail(key: string): Promise<void> {
    const res = await this.failures.consume(key);
    const over = res.consumedPoints - this.freeFailures;
    // 30 s after the first failure past the free ones, doubling with each further one, capped.
    if (over > 0) await this.lockout.block(key, Math.min(FIRST_LOCKOUT_SECONDS * 2 ** (over - 1), MAX_LOCKOUT_SECONDS));
  }

  async clear(key: string): Promise<void> {
    await Promise.all([this.failures.delete(key), this.lockout.delete(key)]);
  }
}

/**
 * Brute-force protection for sign-in, per handle and per client address: a few free failures,
 * then lockouts that double with every further failure. A success clears the handle's count.
 * Counters live in this process; each gateway instance guards its own door.
 */
export class LoginLimiter {
  private readonly handles = new FailureGuard('login_handle', 5);
  private readonly addresses = new FailureGuard('login_ip', 20);
  /** Every attempt from one address, failed or not. */
  private readonly attempts = new RateLimiterMemory({ keyPrefix: 'login_attempt_ip', points: 120, duration: 60 });

  /** Seconds the caller must wait before trying again, or 0 to go ahead. */
  async retryAfter(handle: string, ip: string): Promise<number> {
    const attemptMs = await this.attempts.consume(ip).then(
      () => 0,
      (r: RateLimiterRes) => r.msBeforeNext,
    );
    const ms = Math.max(attemptMs, await this.handles.lockedForMs(handle), await this.addresses.lockedForMs(ip));
    return ms > 0 ? Math.ceil(ms / 1000) : 0;
  }

  async recordFailure(handle: string, ip: string): Promise<void> {
    await Promise.all([this.handles.fail(handle), this.addresses.fail(ip)]);
  }

  async recordSuccess(handle: string): Promise<void> {
    await this.handles.clear(handle);
  }
}
