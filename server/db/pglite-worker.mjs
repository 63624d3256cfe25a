// @ts-check
/*
 * The PGlite database thread (server/db/pglite.ts starts it). PGlite runs Postgres as WebAssembly,
 * and each statement runs synchronously: on the main thread, every write stalled every request,
 * stream and timer for its duration. Here it runs beside them. Plain JavaScript, so that the same
 * file runs from the sources (tests) and next to the bundle (electron.vite.config.ts copies it).
 *
 * Messages in: { id, op: 'query' | 'exec' | 'begin' | 'end' | 'listen' | 'unlisten' | 'close', ... }.
 * Messages out: { id, ok: true, value } or { id, ok: false, error }, and notifications
 * ({ listener, payload }), posted before the answer to the statement that caused them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

/** An error as plain data: its message and every field Postgres gave it (code, detail, constraint…). */
function plain(/** @type {unknown} */ err) {
  if (err instanceof Error) return { ...Object.fromEntries(Object.entries(err)), name: err.name, message: err.message };
  return { name: 'Error', message: String(err) };
}

const reply = (/** @type {number} */ id, /** @type {unknown} */ value) => port.postMessage({ id, ok: true, value });
const fail = (/** @type {number} */ id, /** @type {unknown} */ err) => port.postMessage({ id, ok: false, error: plain(err) });

let pg;
try {
  pg = await PGlite.create(workerData.dataDir ?? 'memory://', { relaxedDurability: false });
  // See server/db/pglite.ts: the kill -9 guarantee rests on this.
  await pg.exec('SET synchronous_commit = on');
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ ready: false, error: plain(err) });
  process.exit(1);
}
const db = /** @type {PGlite} */ (pg);

/**
 * Open transactions by id. PGlite runs one at a time and holds other statements back until it
 * ends, exactly as in a single thread; `end` settles the promise its callback is waiting on.
 * @type {Map<number, { tx: import('@electric-sql/pglite').Transaction, commit: () => void, rollback: () => void, done: Promise<unknown> }>}
 */
const transactions = new Map();
let lastTransaction = 0;

/** @type {Map<number, () => Promise<void>>} */
const listeners = new Map();

/** The transaction a statement runs in, or the database itself. */
function target(/** @type {number | undefined} */ tx) {
  if (tx === undefined) return db;
  const open = transactions.get(tx);
  if (!open) throw new Error('the transaction has already ended');
  return open.tx;
}

port.on('message', async (/** @type {any} */ m) => {
  try {
    switch (m.op) {
      case 'query':
        reply(m.id, (await target(m.tx).query(m.sql, m.params)).rows);
        return;
      case 'exec':
        await target(m.tx).exec(m.sql);
        reply(m.id, undefined);
        return;
      case 'begin': {
        const id = ++lastTransaction;
        /** @type {any} */
        const open = {};
        open.done = db.transaction(
          (tx) =>
            new Promise((commit, rollback) => {
              Object.assign(open, { tx, commit: () => commit(undefined), rollback: () => rollback(new Error('rolled back')) });
              transactions.set(id, open);
              reply(m.id, id);
            }),
        );
        // BEGIN itself failed: nobody else will hear of it.
        open.done.catch((/** @type {unknown} */ err) => !open.tx && fail(m.id, err));
        return;
      }
      case 'end': {
        const open = transactions.get(m.tx);
        if (!open) throw new Error('the transaction has already ended');
        transactions.delete(m.tx);
        if (m.commit) open.commit();
        else open.rollback();
        try {
          await open.done;
        } catch (err) {
          if (m.commit) throw err;
        }
        reply(m.id, undefined);
        return;
      }
      case 'listen':
        // `listener` is the caller's key for this subscription; notifications carry it.
        listeners.set(m.listener, await db.listen(m.channel, (payload) => port.postMessage({ listener: m.listener, payload })));
        reply(m.id, undefined);
        return;
      case 'unlisten':
        await listeners.get(m.listener)?.();
        listeners.delete(m.listener);
        reply(m.id, undefined);
        return;
      case 'close':
        await db.close();
        reply(m.id, undefined);
        return;
      default:
        throw new Error(`unknown database operation ${String(m.op)}`);
    }
  } catch (err) {
    fail(m.id, err);
  }
});
