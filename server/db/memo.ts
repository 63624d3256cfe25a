import { LRUCache } from 'lru-cache';
import type { Db } from './db';

/**
 * Answers kept in memory for at most `ttlMs`, or until `clear()`. Concurrent misses for one key
 * share one load; failed loads and null answers are not kept. A load that is in flight when
 * `clear()` runs still answers its callers but is not kept: it may predate the change.
 */
export class Memo<V> {
  private readonly entries: LRUCache<string, { value: Promise<V> }>;

  constructor(ttlMs: number, maxEntries = 10_000) {
    this.entries = new LRUCache({ max: maxEntries, ttl: ttlMs });
  }

  get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit) return hit.value;
    const entry = { value: load() };
    this.entries.set(key, entry);
    const forget = () => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    };
    entry.value.then((v) => v === null && forget(), forget);
    return entry.value;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}

/**
 * Drops the given memos whenever a change is announced on `channel` (migration 0005's triggers):
 * `access_changed` for sessions, API keys, users, projects, groups and role bindings,
 * `nodes_changed` for what decides which nodes serve inference. The change may come from this
 * process or another one on the same PostgreSQL. On PGlite the notification arrives before the
 * changing statement returns; on PostgreSQL within its delivery time. The memos' TTL bounds
 * staleness should the LISTEN connection drop.
 */
export function dropOnChange(db: Db, channel: 'access_changed' | 'nodes_changed', memos: Array<{ clear(): void }>): Promise<() => Promise<void>> {
  return db.listen(channel, () => {
    for (const m of memos) m.clear();
  });
}
