import { chmod, mkdir } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { makeOwnerOnly } from '../lib/owner-only';
import type { Db, Queryable } from './db';
import { assertIdentifier, withoutValues } from './db';

/**
 * Where the database thread's code is: next to this module, in the sources and in the bundle. In
 * the packaged desktop app that is inside app.asar, and a worker thread loads its script from
 * disk: electron-builder unpacks it beside the archive (build/electron-builder.yml).
 */
const WORKER_FILE = new URL(new URL('./pglite-worker.mjs', import.meta.url).href.replace('/app.asar/', '/app.asar.unpacked/'));

type Answer = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { message: string } & Record<string, unknown> };
type Notification = { listener: number; payload: string };

/**
 * PGlite in the data directory, on a thread of its own (server/db/pglite-worker.mjs): its
 * statements run synchronously, and on the main thread each one stalled every request and stream
 * for its duration. The calls and their order are the same as in one thread; only where PGlite
 * computes changes.
 *
 * An acknowledged write survives `kill -9` of this process: PGlite mounts the directory through
 * Emscripten's NODEFS, whose writes are synchronous `fs.writeSync` calls, and with
 * `synchronous_commit = on` (PGlite's default) COMMIT writes its WAL before the query resolves; the
 * WAL is in the OS page cache by the time we answer, and the next start replays it
 * (tests/integration/durability.test.ts). It does not survive power loss or an OS crash: PGlite
 * starts postgres with `-F` (fsync off) and NODEFS implements no fsync. `relaxedDurability` only
 * changes filesystems that sync asynchronously (IndexedDB, OPFS); it stays off in case we use one.
 * `dataDir` undefined means an in-memory database (tests only).
 *
 * The files hold everything (the WAL too: prompts, run logs), so they are the owner's alone. The
 * directory is made 0700 before PGlite opens it, which bars everyone else from what is inside,
 * and the modes inside are tightened once it is open: PGlite's file system gives the files it
 * unpacks on a first start mode 0666 by an explicit chmod, which no umask prevents (and a worker
 * thread cannot set one). The files PostgreSQL creates later, it creates 0600.
 */
export async function openPglite(dataDir: string | undefined): Promise<Db> {
  if (dataDir) {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await chmod(dataDir, 0o700);
  }
  const worker = new Worker(WORKER_FILE, { workerData: { dataDir } });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Map<number, (payload: string) => void>();
  let lastId = 0;
  let stopped: Error | undefined;

  const call = <T>(message: Record<string, unknown>): Promise<T> => {
    if (stopped) return Promise.reject(stopped);
    const id = ++lastId;
    if (pending.size === 0) worker.ref();
    worker.postMessage({ ...message, id });
    return new Promise<T>((resolve, reject) => pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
  };

  const ready = new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { ready: boolean; error?: { message: string } }) => (m.ready ? resolve() : reject(Object.assign(new Error(m.error?.message), m.error))));
    worker.once('error', reject);
  });
  worker.on('message', (m: Answer | Notification | { ready: boolean }) => {
    if ('listener' in m) {
      listeners.get(m.listener)?.(m.payload);
      return;
    }
    if (!('id' in m)) return;
    const waiting = pending.get(m.id);
    pending.delete(m.id);
    if (pending.size === 0) worker.unref();
    if (m.ok) waiting?.resolve(m.value);
    else waiting?.reject(withoutValues(Object.assign(new Error(m.error.message), m.error)));
  });
  const stop = (err: Error) => {
    stopped ??= err;
    for (const p of pending.values()) p.reject(stopped);
    pending.clear();
  };
  worker.on('error', (err) => stop(Object.assign(new Error(`the PGlite database thread failed: ${err.message}`), { cause: err })));
  worker.on('exit', () => stop(new Error('the PGlite database is closed')));
  await ready;
  if (dataDir) await makeOwnerOnly(dataDir);
  // An idle database keeps nobody alive, as when PGlite ran on the main thread; a statement in
  // flight does.
  worker.unref();

  const queryable = (tx?: number): Queryable => ({
    query: <T extends object>(sql: string, params: readonly unknown[] = []) => call<T[]>({ op: 'query', sql, params, tx }),
    exec: (sql: string) => call<void>({ op: 'exec', sql, tx }),
  });

  return {
    kind: 'pglite',
    ...queryable(),
    async transaction(fn) {
      const tx = await call<number>({ op: 'begin' });
      let result;
      try {
        result = await fn(queryable(tx));
      } catch (err) {
        await call({ op: 'end', tx, commit: false });
        throw err;
      }
      await call({ op: 'end', tx, commit: true });
      return result;
    },
    async listen(channel, onPayload) {
      // Registered before LISTEN runs, so that no notification can arrive unheard.
      const listener = ++lastId;
      listeners.set(listener, onPayload);
      try {
        await call({ op: 'listen', channel: assertIdentifier(channel), listener });
      } catch (err) {
        listeners.delete(listener);
        throw err;
      }
      return async () => {
        listeners.delete(listener);
        await call({ op: 'unlisten', listener });
      };
    },
    async notify(channel, payload) {
      await call({ op: 'query', sql: 'SELECT pg_notify($1, $2)', params: [assertIdentifier(channel), payload] });
    },
    async close() {
      if (stopped) return;
      await call({ op: 'close' });
      stop(new Error('the PGlite database is closed'));
      await worker.terminate();
    },
  };
}
