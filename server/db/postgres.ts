import pg from 'pg';
import type { Db, Queryable } from './db';
import { assertIdentifier, withoutValues } from './db';

// int8 (counts, sums) as JS numbers: our values stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<T extends object>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      try {
        return (await client.query(sql, params as unknown[])).rows as T[];
      } catch (err) {
        throw withoutValues(err);
      }
    },
    async exec(sql: string) {
      try {
        await client.query(sql);
      } catch (err) {
        throw withoutValues(err);
      }
    },
  };
}

/** An external PostgreSQL through a connection pool (`DATABASE_URL`). */
export async function openPostgres(url: string, opts: { max?: number } = {}): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: opts.max ?? 10 });
  // An idle client that loses its server must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  // Fail at start, with the driver's message, rather than on the first request.
  const probe = await pool.connect();
  probe.release();

  // One dedicated connection carries every LISTEN of this process. When it breaks (the server
  // restarted, the connection was cut) it is replaced and every channel listened to again, with
  // backoff; what was notified in between is lost, which is why listeners also poll or let their
  // copies expire. A broken connection must never take the process down.
  let listener: pg.PoolClient | undefined;
  // Releases the listening connection exactly once: its error handler and close() both reach it.
  let dropListener: (() => void) | undefined;
  let connecting: Promise<pg.PoolClient> | undefined;
  let closed = false;
  const handlers = new Map<string, Set<(payload: string) => void>>();

  function listenerClient(): Promise<pg.PoolClient> {
    if (listener) return Promise.resolve(listener);
    connecting ??= (async () => {
      const client = await pool.connect();
      let dropped = false;
      const drop = () => {
        if (dropped) return;
        dropped = true;
        if (listener === client) listener = undefined;
        client.release(true);
      };
      dropListener = drop;
      client.on('notification', (msg) => {
        for (const h of handlers.get(msg.channel) ?? []) h(msg.payload ?? '');
      });
      client.on('error', () => {
        drop();
        reconnect(500);
      });
      try {
        for (const name of handlers.keys()) await client.query(`LISTEN ${name}`);
      } catch (err) {
        drop();
        throw err;
      }
      listener = client;
      return client;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  function reconnect(delayMs: number): void {
    if (closed || listener || handlers.size === 0) return;
    setTimeout(() => {
      if (closed || listener) return;
      listenerClient().catch(() => reconnect(Math.min(delayMs * 2, 30_000)));
    }, delayMs).unref();
  }

  return {
    kind: 'postgres',
    ...wrap(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw withoutValues(err);
      } finally {
        client.release();
      }
    },
    async listen(channel, onPayload) {
      const name = assertIdentifier(channel);
      const client = await listenerClient();
      let set = handlers.get(name);
      if (!set) {
        set = new Set();
        handlers.set(name, set);
        await client.query(`LISTEN ${name}`);
      }
      set.add(onPayload);
      return async () => {
        set.delete(onPayload);
        if (set.size === 0 && handlers.get(name) === set) {
          handlers.delete(name);
          // The connection in use now: it may have been replaced since.
          await listener?.query(`UNLISTEN ${name}`).catch(() => {});
        }
      };
    },
    async notify(channel, payload) {
      await wrap(pool).query('SELECT pg_notify($1, $2)', [assertIdentifier(channel), payload]);
    },
    async close() {
      closed = true;
      dropListener?.();
      listener = undefined;
      await pool.end();
    },
  };
}
