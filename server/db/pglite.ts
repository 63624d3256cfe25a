import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable } from './db';
import { assertIdentifier } from './db';

function wrap(pg: Pick<PGlite, 'query' | 'exec'>): Queryable {
  return {
    async query<T extends object>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      const res = await pg.query(sql, params as unknown[]);
      return res.rows as T[];
    },
    async exec(sql: string) {
      await pg.exec(sql);
    },
  };
}

/**
 * PGlite in the data directory. An acknowledged write survives `kill -9` of this process: PGlite
 * mounts the directory through Emscripten's NODEFS, whose writes are synchronous `fs.writeSync`
 * calls, and with `synchronous_commit = on` (PGlite's default) COMMIT writes its WAL before the
 * query resolves; the WAL is in the OS page cache by the time we answer, and the next start replays
 * it (tests/integration/durability.test.ts). It does not survive power loss or an OS crash: PGlite
 * starts postgres with `-F` (fsync off) and NODEFS implements no fsync. `relaxedDurability` only
 * changes filesystems that sync asynchronously (IndexedDB, OPFS); it stays off in case we use one.
 * `dataDir` undefined means an in-memory database (tests only).
 */
export async function openPglite(dataDir: string | undefined): Promise<Db> {
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const pg = await PGlite.create(dataDir ?? 'memory://', { relaxedDurability: false });
  // The kill -9 guarantee above rests on this; pinned so that neither a postgresql.conf in the data
  // directory nor a future PGlite default can turn it off unnoticed (PGlite has one session).
  await pg.exec('SET synchronous_commit = on');
  const base = wrap(pg);
  return {
    kind: 'pglite',
    ...base,
    transaction: (fn) => pg.transaction((tx) => fn(wrap(tx))),
    async listen(channel, onPayload) {
      return pg.listen(assertIdentifier(channel), onPayload);
    },
    async notify(channel, payload) {
      await pg.query('SELECT pg_notify($1, $2)', [assertIdentifier(channel), payload]);
    },
    async close() {
      await pg.close();
    },
  };
}
