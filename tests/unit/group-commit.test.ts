import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../server/db/group-commit';

describe('GroupCommit', () => {
  it('writes what was submitted together in one flush, and what arrived during a flush in the next one', async () => {
    const batches: number[][] = [];
    let release: () => void = () => {};
    const gc = new GroupCommit<number, string>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await new Promise<void>((r) => (release = r));
      return items.map((i) => `stored ${i}`);
    });
    const first = [1, 2, 3].map((i) => gc.submit(i));
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[1, 2, 3]]);
    // Arrive while the first flush is in flight.
    const second = [4, 5].map((i) => gc.submit(i));
    release();
    expect(await Promise.all([...first, ...second])).toEqual(['stored 1', 'stored 2', 'stored 3', 'stored 4', 'stored 5']);
    expect(batches).toEqual([[1, 2, 3], [4, 5]]);
  });

  it('fails only the batch whose write failed; later writes go through', async () => {
    let calls = 0;
    const gc = new GroupCommit<number, number>(async (items) => {
      calls++;
      if (calls === 1) throw new Error('disk full');
      return items;
    });
    const failed = [gc.submit(1), gc.submit(2)];
    await expect(Promise.all(failed)).rejects.toThrow('disk full');
    await Promise.allSettled(failed);
    expect(await gc.submit(3)).toBe(3);
  });
});
