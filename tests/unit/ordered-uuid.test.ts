import { describe, expect, it } from 'vitest';
import { orderedUuid } from '../../server/lib/ordered-uuid';

describe('orderedUuid', () => {
  it('makes version-7 UUIDs that sort (as PostgreSQL compares uuids, bytewise) in the order they were made, within one millisecond too', () => {
    const ids = Array.from({ length: 5000 }, () => orderedUuid(1_800_000_000_000));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // A later millisecond still sorts after the borrowed ones.
    expect(orderedUuid(1_800_000_000_005) > ids.at(-1)!).toBe(true);
  });
});
