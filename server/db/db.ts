/**
 * The one database interface every store uses. Two adapters implement it: PGlite in-process
 * (the default, a data directory on disk) and node-postgres (`DATABASE_URL`). The SQL is the same
 * for both; anything adapter-specific stays inside the adapter.
 */
export type Row = Record<string, unknown>;

export interface Queryable {
  /** One parameterised statement; returns its rows. */
  query<T extends object = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** LISTEN on a channel; resolves to an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  notify(channel: string, payload: string): Promise<void>;
  close(): Promise<void>;
}

/** Postgres error codes the services translate into HTTP answers. */
export const PgErrorCode = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  invalidTextRepresentation: '22P02',
} as const;

export function pgErrorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

/** Only identifiers we choose ourselves go through here (channel names). */
export function assertIdentifier(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid identifier: ${name}`);
  return name;
}

/**
 * The fields of a driver's error that repeat what was sent: PGlite's copy of the statement's
 * parameters, and PostgreSQL's `detail`/`where` (they quote the offending value or row). Errors are
 * logged, and values can be anyone's content; the code, constraint and message say what went wrong.
 */
const VALUE_FIELDS = ['params', 'queryOptions', 'detail', 'where', 'internalQuery'] as const;

/** A database's error without the values it quoted (see VALUE_FIELDS); anything else as it is. Every adapter throws only these. */
export function withoutValues<E>(err: E): E {
  // Only PostgreSQL's errors (both drivers give them its `severity`): others may use these names for their own fields.
  if (err instanceof Error && 'severity' in err) for (const f of VALUE_FIELDS) delete (err as unknown as Record<string, unknown>)[f];
  return err;
}
