import type { Queryable } from '../db';
import { Conditions } from '../db/sql';
import { clearFirstRunPassword } from './first-run-password';

export interface UserRow {
  id: string;
  handle: string;
  email: string | null;
  display_name: string | null;
  is_active: boolean;
  is_system: boolean;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'u.id, u.handle, u.email, u.display_name, u.is_active, u.is_system, u.created_at, u.updated_at';

export async function findUserById(q: Queryable, id: string): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(`SELECT ${COLUMNS} FROM users u WHERE u.id = $1`, [id]);
  return rows[0] ?? null;
}

export async function findUserByHandle(q: Queryable, handle: string): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(`SELECT ${COLUMNS} FROM users u WHERE u.handle = $1`, [handle]);
  return rows[0] ?? null;
}

export async function getPasswordHash(q: Queryable, userId: string): Promise<string | null> {
  const rows = await q.query<{ password_hash: string }>('SELECT password_hash FROM password_credentials WHERE user_id = $1', [userId]);
  return rows[0]?.password_hash ?? null;
}

export async function insertUser(
  q: Queryable,
  u: { handle: string; email?: string | null; displayName?: string | null; isSystem?: boolean },
): Promise<UserRow> {
  const rows = await q.query<UserRow>(
    `INSERT INTO users (handle, email, display_name, is_system) VALUES ($1, $2, $3, $4)
     RETURNING id, handle, email, display_name, is_active, is_system, created_at, updated_at`,
    [u.handle, u.email ?? null, u.displayName ?? null, u.isSystem ?? false],
  );
  return rows[0]!;
}

/**
 * Every password change goes through here. True when it replaced the generated first-run
 * password of `admin` (no longer pending: the caller removes its file once committed).
 */
export async function setPasswordHash(q: Queryable, userId: string, hash: string): Promise<boolean> {
  await q.query(
    `INSERT INTO password_credentials (user_id, password_hash) VALUES ($1, $2)
     ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()`,
    [userId, hash],
  );
  return clearFirstRunPassword(q, userId);
}

export async function setUserActive(q: Queryable, userId: string, active: boolean): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(
    `UPDATE users u SET is_active = $2, updated_at = now() WHERE u.id = $1 RETURNING ${COLUMNS}`,
    [userId, active],
  );
  return rows[0] ?? null;
}

/** A user as the admin API shows it: the row plus the id of their default project. */
export interface UserView extends UserRow {
  default_project_id: string | null;
}

const VIEW = `SELECT ${COLUMNS}, p.id AS default_project_id FROM users u LEFT JOIN projects p ON p.default_for_user_id = u.id`;

export async function findUserView(q: Queryable, id: string): Promise<UserView | null> {
  const rows = await q.query<UserView>(`${VIEW} WHERE u.id = $1`, [id]);
  return rows[0] ?? null;
}

/** Ordered by handle; the page after `afterHandle` when given. */
export async function listUserViews(q: Queryable, f: { isActive?: boolean; afterHandle?: string; limit: number }): Promise<UserView[]> {
  const c = new Conditions();
  if (f.isActive !== undefined) c.add('u.is_active = ?', f.isActive);
  if (f.afterHandle !== undefined) c.add('u.handle > ?', f.afterHandle);
  const limit = c.param(f.limit);
  return q.query<UserView>(`${VIEW} ${c.where()} ORDER BY u.handle LIMIT ${limit}`, c.params);
}

export async function findUserByEmail(q: Queryable, email: string): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(`SELECT ${COLUMNS} FROM users u WHERE u.email = $1`, [email]);
  return rows[0] ?? null;
}

/** Reads the user and holds their row until the transaction ends, so checks and changes agree. */
export async function lockUser(q: Queryable, id: string): Promise<UserRow | null> {
  const rows = await q.query<UserRow>(`SELECT ${COLUMNS} FROM users u WHERE u.id = $1 FOR UPDATE`, [id]);
  return rows[0] ?? null;
}

/** Sets the given profile fields (null clears one); leaves the others as they are. */
export async function updateUserProfile(q: Queryable, id: string, patch: { email?: string | null; displayName?: string | null }): Promise<void> {
  const sets: string[] = [];
  const params: unknown[] = [id];
  if (patch.email !== undefined) {
    params.push(patch.email);
    sets.push(`email = $${params.length}`);
  }
  if (patch.displayName !== undefined) {
    params.push(patch.displayName);
    sets.push(`display_name = $${params.length}`);
  }
  if (sets.length === 0) return;
  await q.query(`UPDATE users SET ${sets.join(', ')}, updated_at = now() WHERE id = $1`, params);
}
