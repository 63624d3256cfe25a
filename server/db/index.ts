export type { Db, Queryable, Row } from './db';
export { PgErrorCode, pgErrorCode } from './db';
export { migrate, SchemaTooNewError, bundledMigrations } from './migrate';
import type { Db } from './db';
import { openPglite } from './pglite';
import { openPostgres } from './postgres';

export type DbTarget = { kind: 'pglite'; dataDir: string | undefined } | { kind: 'postgres'; url: string };

export function openDb(target: DbTarget): Promise<Db> {
  return target.kind === 'postgres' ? openPostgres(target.url) : openPglite(target.dataDir);
}

/** For logs and the settings page: where the data lives, never the password. */
export function describeDbTarget(target: DbTarget): string {
  if (target.kind === 'pglite') return target.dataDir ? `PGlite at ${target.dataDir}` : 'PGlite in memory';
  try {
    const u = new URL(target.url);
    return `PostgreSQL at ${u.hostname}${u.port ? ':' + u.port : ''}${u.pathname}`;
  } catch {
    return 'PostgreSQL';
  }
}
