import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgErrorCode, PgErrorCode, type Db } from '../../server/db';
import { openPglite } from '../../server/db/pglite';

/*
 * PGlite on its own thread (server/db/pglite-worker.mjs): the server's streams and timers go on
 * while a statement runs, and what stores rely on crosses the thread intact: Postgres error codes,
 * transactions that roll back, notifications before the answer of the statement that sent them.
 */
describe('PGlite on its own thread', () => {
  let db: Db;
  beforeAll(async () => {
    db = await openPglite(undefined);
    await db.exec('CREATE TABLE t (id int PRIMARY KEY, note text)');
  });
  afterAll(async () => {
    await db?.close();
  });

  it('leaves the event loop free while a statement runs', async () => {
    const order: string[] = [];
    const slow = db.query('SELECT pg_sleep(0.5)').then(() => order.push('statement'));
    await new Promise((r) => setTimeout(r, 20)).then(() => order.push('timer'));
    await slow;
    expect(order).toEqual(['timer', 'statement']);
  });

  it('keeps the Postgres error code, so services can answer 409', async () => {
    await db.query('INSERT INTO t VALUES (1, $1)', ['first']);
    const err = await db.query('INSERT INTO t VALUES (1, $1)', ['again']).catch((e: unknown) => e);
    expect(pgErrorCode(err)).toBe(PgErrorCode.uniqueViolation);
    expect(err).toBeInstanceOf(Error);
  });

  it('rolls a transaction back when its work throws, and commits it otherwise', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES (2, $1)', ['lost']);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    const kept = await db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES (3, $1)', ['kept']);
      return (await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM t'))[0]!.n;
    });
    expect(kept).toBe(2);
    expect((await db.query<{ id: number }>('SELECT id FROM t ORDER BY id')).map((r) => r.id)).toEqual([1, 3]);
  });

  it('delivers a notification before the answer of the statement that sent it, and stops after unlisten', async () => {
    const heard: string[] = [];
    const unlisten = await db.listen('thread_test', (payload) => heard.push(payload));
    await db.notify('thread_test', 'one');
    expect(heard).toEqual(['one']);
    await unlisten();
    await db.notify('thread_test', 'two');
    expect(heard).toEqual(['one']);
  });

  it('answers every call after close with an error, not a hang', async () => {
    const other = await openPglite(undefined);
    await other.close();
    await expect(other.query('SELECT 1')).rejects.toThrow(/closed/);
  });
});
