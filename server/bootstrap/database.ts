import { chmod, mkdir } from 'node:fs/promises';
import { dataFiles, type ServerConfig } from '../config/config';
import { describeDbTarget, migrate, openDb, type Db, type DbTarget } from '../db';
import { lockDataDir } from './data-dir-lock';

export interface OpenDatabase {
  db: Db;
  /** Where the data lives, for the banner: never a password. */
  description: string;
  close(): Promise<void>;
}

/**
 * The configured database, migrated to this code's schema: PostgreSQL for DATABASE_URL, else
 * PGlite in the data directory, which one process at a time may hold.
 */
export async function openDatabase(config: ServerConfig): Promise<OpenDatabase> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  // Also one made by an earlier version or by hand: it holds the master key and the database.
  await chmod(config.dataDir, 0o700);
  const target: DbTarget = config.databaseUrl ? { kind: 'postgres', url: config.databaseUrl } : { kind: 'pglite', dataDir: dataFiles.pglite(config.dataDir) };
  const release = target.kind === 'pglite' ? await lockDataDir(config.dataDir) : async () => {};
  let db: Db | undefined;
  try {
    db = await openDb(target);
    await migrate(db);
  } catch (err) {
    await db?.close().catch(() => {});
    await release();
    throw err;
  }
  const opened = db;
  return {
    db: opened,
    description: describeDbTarget(target),
    async close() {
      await opened.close();
      await release();
    },
  };
}
