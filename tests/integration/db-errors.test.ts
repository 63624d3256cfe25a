import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../server/db';
import { createPostgresDatabase, DB_KINDS } from '../support/harness';

/*
 * Errors from the database are logged (a 500's log line carries its error), and the drivers quote
 * what was sent: PGlite copies the statement's parameters into its errors, PostgreSQL quotes the
 * offending JSON in `where`. Parameters are people's content (chat messages, log lines), so an
 * error leaving the database layer quotes none of it.
 */
describe.each(DB_KINDS)('database errors on %s', (kind) => {
  let db: Db;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    if (kind === 'postgres') {
      const pg = await createPostgresDatabase();
      drop = pg.drop;
      db = await openDb({ kind: 'postgres', url: pg.url });
    } else {
      db = await openDb({ kind: 'pglite', dataDir: undefined });
    }
    await db.exec('CREATE TABLE notes (body text, doc jsonb)');
  });
  afterAll(async () => {
    await db?.close();
    await drop?.();
  });

  /** Everything a log line shows of an error: its message, stack and own fields. */
  const logged = (err: unknown) => JSON.stringify({ ...(err as object), message: (err as Error).message, stack: (err as Error).stack });

  it('keep their code but quote none of the values sent', async () => {
    const secret = 'private-chat-message-4242';
    const failures = await Promise.all([
      db.query('INSERT INTO notes (doc) VALUES ($1::jsonb)', [JSON.stringify({ text: `${secret}\u0000` })]).catch((e: unknown) => e),
      db.query('INSERT INTO notes (body) VALUES ($1)', [`${secret}\u0000`]).catch((e: unknown) => e),
      db.transaction((tx) => tx.query('INSERT INTO notes (doc) VALUES ($1::jsonb)', [JSON.stringify({ text: `${secret}\ud800` })])).catch((e: unknown) => e),
    ]);
    expect(failures.map((e) => (e as { code?: string }).code)).toEqual(['22P05', '22021', '22P02']);
    for (const err of failures) expect(logged(err)).not.toContain(secret);
  });
});
