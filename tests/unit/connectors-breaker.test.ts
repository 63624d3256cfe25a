import { describe, expect, it } from 'vitest';
import { FailureStreaks, RateLimiter } from '../../server/connectors/breaker';

describe('connector rate limiter', () => {
  it('gives a burst of the per-minute rate, then refills one call every 60/rate seconds', () => {
    let now = 0;
    const limiter = new RateLimiter(6, () => now);
    for (let i = 0; i < 6; i++) expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a')).toEqual({ ok: false, retryAfterSeconds: 10 });
    expect(limiter.take('b')).toEqual({ ok: true });
    now += 10_000;
    expect(limiter.take('a')).toEqual({ ok: true });
    expect(limiter.take('a').ok).toBe(false);
  });

  it('does not limit at 0', () => {
    const limiter = new RateLimiter(0);
    for (let i = 0; i < 1000; i++) expect(limiter.take('a').ok).toBe(true);
  });
});

describe('connector failure streaks', () => {
  it('trips at the threshold of consecutive failures; a success starts over', () => {
    const streaks = new FailureStreaks(3);
    expect(streaks.failed('a')).toBe(false);
    expect(streaks.failed('a')).toBe(false);
    streaks.succeeded('a');
    expect(streaks.failed('a')).toBe(false);
    expect(streaks.failed('a')).toBe(false);
    expect(streaks.failed('a')).toBe(true);
    expect(streaks.failed('b')).toBe(false);
    expect(new FailureStreaks(0).failed('a')).toBe(false);
  });
});
