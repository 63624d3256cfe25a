/**
 * Polls `check` until it returns something truthy and returns that. Work happens
 * asynchronously (queues, heartbeats, containers), so tests wait for an outcome with a generous
 * deadline rather than assert how fast it came.
 */
export async function until<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
