import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../server/db';
import { openPostgres } from '../../server/db/postgres';
import { createPostgresDatabase } from '../support/harness';
import { until } from '../support/until';

/*
 * A gateway's LISTEN connection to PostgreSQL breaks when the server restarts or the connection is
 * cut. The gateway must not crash, and must listen again: the hub, the command runner and the
 * access memos all rely on notifications.
 */
describe('PostgreSQL LISTEN connection', () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;

  beforeAll(async () => {
    database = await createPostgresDatabase();
    db = await openPostgres(database.url);
  });
  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  it('survives its connection being cut, and listens again on every channel', async () => {
    const got: string[] = [];
    await db.listen('cynode_test_a', (p) => got.push(`a:${p}`));
    await db.listen('cynode_test_b', (p) => got.push(`b:${p}`));
    await db.notify('cynode_test_a', 'before');
    await until('the first notification', async () => got.includes('a:before'));

    // Cut the listening connection from the server side, as a restart would.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const cut = await admin.query(
      `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN %'`,
    );
    await admin.end();
    expect(cut.rows.length).toBeGreaterThan(0);

    // Notifications sent while it reconnects are lost; keep sending until both channels hear again.
    let n = 0;
    await until('both channels to be listened to again', async () => {
      n++;
      await db.notify('cynode_test_a', `after-${n}`);
      await db.notify('cynode_test_b', `after-${n}`);
      return got.some((g) => g.startsWith('a:after-')) && got.some((g) => g.startsWith('b:after-'));
    });
    // Queries on the pool were never affected.
    expect(await db.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});
