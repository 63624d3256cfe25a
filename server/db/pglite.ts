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
 * PGlite in the data directory. Full durability: no `relaxedDurability`, so a write is on disk
 * (in the OS) before its query resolves and an acknowledged write survives `kill -9`.
 * `dataDir` undefined means an in-memory database (tests only).
 */
export async function openPglite(dataDir: string | undefined): Promise<Db> {
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const pg = await PGlite.create(dataDir ?? 'memory://', { relaxedDurability: false });
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
