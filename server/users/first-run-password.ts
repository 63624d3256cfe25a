import { readFile, rm } from 'node:fs/promises';
import type { Db, Queryable } from '../db';
import { verifyPassword } from '../identity/passwords';

/**
 * The generated first-run password of `admin`, while it is still their password. The database
 * holds the truth: a `system_settings` row (value `{"user_id": …}`) that first run writes in the
 * transaction that creates the admin with a generated password, and that any change of that
 * user's password deletes (UserService.setPassword, whatever the path: change, admin reset, `cynode
 * reset-password`, first-run setup). The 0600 file in the data directory goes with it.
 */
export const FIRST_RUN_PASSWORD_SETTING = 'first_run_password_pending';

export async function markFirstRunPasswordPending(q: Queryable, userId: string): Promise<void> {
  await q.query(
    `INSERT INTO system_settings (key, value) VALUES ($1, $2::jsonb)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = system_settings.version + 1, updated_at = now()`,
    [FIRST_RUN_PASSWORD_SETTING, JSON.stringify({ user_id: userId })],
  );
}

/** The user whose generated first-run password is still their password, if any; `lock` holds the row. */
export async function firstRunPasswordUser(q: Queryable, opts: { lock?: boolean } = {}): Promise<string | null> {
  const rows = await q.query<{ user_id: string | null }>(`SELECT value->>'user_id' AS user_id FROM system_settings WHERE key = $1${opts.lock ? ' FOR UPDATE' : ''}`, [FIRST_RUN_PASSWORD_SETTING]);
  return rows[0]?.user_id ?? null;
}

/** Called by every password change: true when it replaced the generated first-run password. */
export async function clearFirstRunPassword(q: Queryable, userId: string): Promise<boolean> {
  const rows = await q.query(`DELETE FROM system_settings WHERE key = $1 AND value->>'user_id' = $2 RETURNING key`, [FIRST_RUN_PASSWORD_SETTING, userId]);
  return rows.length > 0;
}

/** Once the generated password is no longer anyone's, its copy on disk has no reason to stay. */
export async function removeFirstRunPasswordFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

/**
 * At start, after first run: a password file the database does not account for (the password
 * changed while this process was not the one answering — another gateway on the same PostgreSQL,
 * or a change from before this was tracked) is removed once it no longer opens the admin's
 * account; one that still does marks the password pending again.
 */
export async function reconcileFirstRunPassword(db: Db, file: string): Promise<void> {
  if (await firstRunPasswordUser(db)) return;
  const content = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (content === null) return;
  const rows = await db.query<{ id: string; password_hash: string | null }>(
    `SELECT u.id, pc.password_hash FROM users u LEFT JOIN password_credentials pc ON pc.user_id = u.id WHERE u.handle = 'admin'`,
  );
  const admin = rows[0];
  const password = content.trim();
  if (admin?.password_hash && password && (await verifyPassword(admin.password_hash, password))) {
    // Unless the password changed while it was being verified.
    await db.transaction(async (tx) => {
      const now = await tx.query<{ password_hash: string }>('SELECT password_hash FROM password_credentials WHERE user_id = $1 FOR UPDATE', [admin.id]);
      if (now[0]?.password_hash === admin.password_hash) await markFirstRunPasswordPending(tx, admin.id);
    });
    if (await firstRunPasswordUser(db)) return;
  }
  await removeFirstRunPasswordFile(file);
}
