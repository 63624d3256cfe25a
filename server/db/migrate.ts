import { Umzug, type UmzugStorage } from 'umzug';
import type { Db, Queryable } from './db';

/**
 * The schema lives only in `migrations/NNNN_name.sql`. The files are bundled at build time
 * (Vite's import.meta.glob), so the built CLI and the Electron app carry exactly the schema
 * their code was written for.
 */
const files = import.meta.glob<string>('../../migrations/*.sql', { query: '?raw', import: 'default', eager: true });

export interface Migration {
  name: string;
  sql: string;
}

export function bundledMigrations(): Migration[] {
  return Object.entries(files)
    .map(([path, sql]) => ({ name: path.split('/').pop()!.replace(/\.sql$/, ''), sql }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export class SchemaTooNewError extends Error {
  constructor(readonly unknown: string[]) {
    super(
      `the database was migrated by a newer CyNode (it has migrations this version does not know: ${unknown.join(', ')}); ` +
        'upgrade CyNode or point it at another database',
    );
  }
}

function storage(tx: Queryable): UmzugStorage {
  return {
    async executed() {
      const rows = await tx.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
      return rows.map((r) => r.name);
    },
    async logMigration({ name }) {
      await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
    },
    async unlogMigration({ name }) {
      await tx.query('DELETE FROM schema_migrations WHERE name = $1', [name]);
    },
  };
}

// Several gateways may start at once on one PostgreSQL: they take turns on this advisory lock.
const MIGRATION_LOCK = 727_001;

/**
 * Applies pending migrations in one transaction (all or nothing) and records them.
 * Refuses to run against a database that has migrations this code does not know.
 * Returns the names applied now.
 */
export async function migrate(db: Db, migrations = bundledMigrations()): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const store = storage(tx);
    const umzug = new Umzug({
      migrations: migrations.map((m) => ({ name: m.name, up: ({ context }: { context: Queryable }) => context.exec(m.sql) })),
      context: tx,
      storage: store,
      logger: undefined,
    });
    const known = new Set(migrations.map((m) => m.name));
    // Ask the table, not umzug: umzug.executed() lists only the migrations it was given, so it
    // can never report one this code does not know.
    const unknown = (await store.executed({ context: tx })).filter((n) => !known.has(n));
    if (unknown.length > 0) throw new SchemaTooNewError(unknown);
    const applied = await umzug.up();
    return applied.map((m) => m.name);
  });
}
