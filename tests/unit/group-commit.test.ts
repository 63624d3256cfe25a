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

  it('rejects what cannot be written, even alone; later writes go through', async () => {
    let down = true;
    const gc = new GroupCommit<number, number>(async (items) => {
      if (down) throw new Error('disk full');
      return items;
    });
    const failed = [gc.submit(1), gc.submit(2)];
    await expect(Promise.all(failed)).rejects.toThrow('disk full');
    expect(await Promise.allSettled(failed)).toMatchObject([{ status: 'rejected' }, { status: 'rejected' }]);
    down = false;
    expect(await gc.submit(3)).toBe(3);
  });

  it("fails only the write the database refuses: the others of its batch are written again alone and succeed", async () => {
    const batches: string[][] = [];
    let release: () => void = () => {};
    const gc = new GroupCommit<string, string>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await new Promise<void>((r) => (release = r));
      if (items.includes('bad')) throw new Error('invalid byte sequence');
      return items.map((i) => `stored ${i}`);
    });
    const first = gc.submit('first');
    await new Promise((r) => setImmediate(r));
    // These share the next batch with the bad one.
    const settled = Promise.allSettled(['a', 'bad', 'b'].map((i) => gc.submit(i)));
    release();
    expect(await first).toBe('stored first');
    const [a, bad, b] = await settled;
    expect(a).toEqual({ status: 'fulfilled', value: 'stored a' });
    expect(bad).toMatchObject({ status: 'rejected', reason: new Error('invalid byte sequence') });
    expect(b).toEqual({ status: 'fulfilled', value: 'stored b' });
    // Alone, in the order they were submitted.
    expect(batches).toEqual([['first'], ['a', 'bad', 'b'], ['a'], ['bad'], ['b']]);
  });
});
