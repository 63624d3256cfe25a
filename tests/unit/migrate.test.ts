import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { bundledMigrations, migrate, SchemaTooNewError, type Db } from '../../server/db';
import { openPglite } from '../../server/db/pglite';
import { openPostgres } from '../../server/db/postgres';
import { createPostgresDatabase } from '../support/harness';

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Kind = 'pglite' | 'postgres';

/** A new, empty database of the given kind; closed (and dropped) after the file. */
async function freshDb(kind: Kind): Promise<{ db: Db; url?: string }> {
  if (kind === 'pglite') {
    const db = await openPglite(undefined);
    cleanups.push(() => db.close());
    return { db };
  }
  const pgDb = await createPostgresDatabase();
  cleanups.push(pgDb.drop);
  const db = await openPostgres(pgDb.url, { max: 2 });
  cleanups.push(() => db.close());
  return { db, url: pgDb.url };
}

async function recorded(db: Db): Promise<string[]> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
  if (!exists[0]?.t) return [];
  return (await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).map((r) => r.name);
}

async function tableExists(db: Db, name: string): Promise<boolean> {
  return (await db.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [name]))[0]?.t != null;
}

const bundled = bundledMigrations();

describe('bundled migrations', () => {
  it('are numbered SQL files in order', () => {
    expect(bundled.length).toBeGreaterThan(0);
    for (const m of bundled) expect(m.name).toMatch(/^\d{4}_[a-z0-9_]+$/);
    expect(bundled.map((m) => m.name)).toEqual([...bundled.map((m) => m.name)].sort());
    expect(new Set(bundled.map((m) => m.name.slice(0, 4))).size).toBe(bundled.length);
  });
});

describe.each(['pglite', 'postgres'] as const)('migrate on %s', (kind) => {
  let db: Db;
  beforeEach(async () => {
    ({ db } = await freshDb(kind));
  });

  it('applies the bundled migrations, records them, and applies nothing the second time', async () => {
    const names = bundled.map((m) => m.name);
    expect(await migrate(db)).toEqual(names);
    expect(await recorded(db)).toEqual(names);
    for (const table of ['users', 'api_keys', 'projects', 'audit_events']) expect(await tableExists(db, table)).toBe(true);

    expect(await migrate(db)).toEqual([]);
    expect(await recorded(db)).toEqual(names);
  });

  it('applies only what is new when the code gains a migration', async () => {
    await migrate(db);
    const next = { name: '9000_next', sql: 'CREATE TABLE next_feature (id int PRIMARY KEY)' };
    expect(await migrate(db, [...bundled, next])).toEqual(['9000_next']);
    expect(await tableExists(db, 'next_feature')).toBe(true);
  });

  it('refuses a database migrated by newer code, and changes nothing', async () => {
    await migrate(db);
    await db.query('INSERT INTO schema_migrations (name) VALUES ($1)', ['9999_from_the_future']);
    const before = await recorded(db);
    const pending = { name: '9000_pending', sql: 'CREATE TABLE pending_feature (id int PRIMARY KEY)' };

    const err = await migrate(db, [...bundled, pending]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as SchemaTooNewError).unknown).toEqual(['9999_from_the_future']);
    expect((err as Error).message).toContain('9999_from_the_future');

    expect(await recorded(db)).toEqual(before);
    expect(await tableExists(db, 'pending_feature')).toBe(false);
  });

  it('is all or nothing: a failing migration leaves none of its run applied', async () => {
    const run = [
      { name: '0001_a', sql: 'CREATE TABLE run_a (id int PRIMARY KEY)' },
      { name: '0002_b', sql: "CREATE TABLE run_b (id int PRIMARY KEY); INSERT INTO run_b VALUES (1)" },
      { name: '0003_broken', sql: 'CREATE TABLE run_c (id int PRIMARY KEY); SELECT no_such_function()' },
    ];
    await expect(migrate(db, run)).rejects.toThrow(/no_such_function/);
    expect(await recorded(db)).toEqual([]);
    for (const t of ['run_a', 'run_b', 'run_c']) expect(await tableExists(db, t)).toBe(false);

    // Earlier runs stay; only the failing run's migrations are undone.
    await migrate(db, run.slice(0, 1));
    const more = [...run.slice(0, 1), { name: '0002_good', sql: 'CREATE TABLE run_good (id int)' }, { name: '0003_bad', sql: 'CREATE TABLE run_a (id int)' }];
    await expect(migrate(db, more)).rejects.toThrow(/run_a/);
    expect(await recorded(db)).toEqual(['0001_a']);
    expect(await tableExists(db, 'run_a')).toBe(true);
    expect(await tableExists(db, 'run_good')).toBe(false);

    // Once the broken migration is fixed, the next start applies it.
    await migrate(db, [...run.slice(0, 1), { name: '0002_good', sql: 'CREATE TABLE run_good (id int)' }]);
    expect(await recorded(db)).toEqual(['0001_a', '0002_good']);
  });
});

describe('migrate on one PostgreSQL from several gateways at once', () => {
  it('lets every caller succeed and applies each migration once', async () => {
    const { url, db } = await freshDb('postgres');
    const others = await Promise.all([1, 2].map(() => openPostgres(url!, { max: 2 })));
    for (const o of others) cleanups.push(() => o.close());
    // Non-idempotent on purpose: a second application would fail on the duplicate key.
    const withSeed = [...bundled, { name: '9000_seed', sql: "CREATE TABLE seeded (k text PRIMARY KEY); INSERT INTO seeded VALUES ('once')" }];

    const results = await Promise.all([db, ...others].map((d) => migrate(d, withSeed)));
    const all = withSeed.map((m) => m.name);
    expect(results.flat().sort()).toEqual(all);
    expect(results.filter((r) => r.length > 0)).toHaveLength(1);
    expect(await recorded(db)).toEqual(all);
    expect(await db.query('SELECT k FROM seeded')).toEqual([{ k: 'once' }]);
  });
});
