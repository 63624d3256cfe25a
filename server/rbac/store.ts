import type { Queryable } from '../db';
import { Conditions } from '../db/sql';

export interface RoleRow {
  id: string;
  name: string;
  description: string;
  scope_type: 'system' | 'project';
}

export async function findRole(q: Queryable, nameOrId: string): Promise<RoleRow | null> {
  const rows = await q.query<RoleRow>(
    'SELECT id, name, description, scope_type FROM roles WHERE name = $1 OR id::text = $1',
    [nameOrId],
  );
  return rows[0] ?? null;
}

/**
 * Does the user hold `action` through any active binding (direct or through an active group),
 * at system scope or at the given project's scope? Evaluated on every request: a revoked
 * binding or membership counts at once.
 */
export async function hasPermission(q: Queryable, userId: string, action: string, projectId: string | null): Promise<boolean> {
  const rows = await q.query<{ ok: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM role_bindings rb
       JOIN role_permissions rp ON rp.role_id = rb.role_id
       WHERE rb.is_active
         AND (rp.action = $2 OR rp.action = '*')
         AND (rb.scope_type = 'system' OR (rb.scope_type = 'project' AND rb.scope_id = $3::uuid))
         AND (
           (rb.subject_type = 'user' AND rb.subject_id = $1)
           OR (rb.subject_type = 'group' AND rb.subject_id IN (
                 SELECT gm.group_id FROM group_memberships gm JOIN groups g ON g.id = gm.group_id
                 WHERE gm.user_id = $1 AND gm.is_active AND g.is_active))
         )
     ) AS ok`,
    [userId, action, projectId],
  );
  return rows[0]?.ok === true;
}

export interface RoleWithPermissions extends RoleRow {
  permissions: string[];
}

/** The role map as clients see it. */
export async function listRoles(q: Queryable): Promise<RoleWithPermissions[]> {
  return q.query<RoleWithPermissions>(
    `SELECT r.id, r.name, r.description, r.scope_type,
            COALESCE(array_agg(rp.action ORDER BY rp.action) FILTER (WHERE rp.action IS NOT NULL), '{}') AS permissions
     FROM roles r LEFT JOIN role_permissions rp ON rp.role_id = r.id
     GROUP BY r.id ORDER BY r.scope_type DESC, r.name`,
  );
}

export interface RoleBindingRow {
  id: string;
  subject_type: 'user' | 'group';
  subject_id: string;
  role_id: string;
  role: string;
  scope_type: 'system' | 'project';
  scope_id: string | null;
  is_active: boolean;
  created_at: Date;
  updated_at: Date;
  updated_by: string | null;
}

export const BINDING_COLUMNS = `rb.id, rb.subject_type, rb.subject_id, rb.role_id, r.name AS role, rb.scope_type, rb.scope_id,
  rb.is_active, rb.created_at, rb.updated_at, rb.updated_by`;

export async function findRoleBinding(q: Queryable, id: string): Promise<RoleBindingRow | null> {
  const rows = await q.query<RoleBindingRow>(`SELECT ${BINDING_COLUMNS} FROM role_bindings rb JOIN roles r ON r.id = rb.role_id WHERE rb.id = $1`, [id]);
  return rows[0] ?? null;
}

/**
 * Creates the binding, or finds the identical active one. The unique index decides under
 * concurrency, so two simultaneous grants still leave one binding.
 */
export async function insertRoleBinding(
  q: Queryable,
  b: { subjectType: 'user' | 'group'; subjectId: string; roleId: string; scopeType: 'system' | 'project'; scopeId: string | null; by: string },
): Promise<{ binding: RoleBindingRow; created: boolean }> {
  const inserted = await q.query<{ id: string }>(
    `INSERT INTO role_bindings (subject_type, subject_id, role_id, scope_type, scope_id, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (subject_type, subject_id, role_id, scope_type, COALESCE(scope_id, '00000000-0000-0000-0000-000000000000'::uuid)) WHERE is_active
     DO NOTHING RETURNING id`,
    [b.subjectType, b.subjectId, b.roleId, b.scopeType, b.scopeId, b.by],
  );
  if (inserted[0]) return { binding: (await findRoleBinding(q, inserted[0].id))!, created: true };
  const existing = await q.query<RoleBindingRow>(
    `SELECT ${BINDING_COLUMNS} FROM role_bindings rb JOIN roles r ON r.id = rb.role_id
     WHERE rb.is_active AND rb.subject_type = $1 AND rb.subject_id = $2 AND rb.role_id = $3 AND rb.scope_type = $4
       AND rb.scope_id IS NOT DISTINCT FROM $5::uuid`,
    [b.subjectType, b.subjectId, b.roleId, b.scopeType, b.scopeId],
  );
  return { binding: existing[0]!, created: false };
}

/** Soft revoke; null when the binding was already inactive. */
export async function deactivateRoleBinding(q: Queryable, id: string, by: string): Promise<RoleBindingRow | null> {
  const rows = await q.query<{ id: string }>(
    'UPDATE role_bindings SET is_active = false, updated_at = now(), updated_by = $2 WHERE id = $1 AND is_active RETURNING id',
    [id, by],
  );
  return rows[0] ? findRoleBinding(q, rows[0].id) : null;
}

/**
 * Serialises changes to the bindings of one scope until the transaction ends, so two revocations
 * racing each other cannot both see "someone else still holds the role".
 */
export async function lockBindingScope(q: Queryable, scopeType: 'system' | 'project', scopeId: string | null): Promise<void> {
  await q.query('SELECT pg_advisory_xact_lock(727003, hashtext($1))', [`${scopeType}:${scopeId ?? ''}`]);
}

/**
 * How many active users would still hold `role` at the scope without binding `excludingId`,
 * counting group-derived holders (active group, active membership).
 */
export async function countRoleHoldersExcept(
  q: Queryable,
  r: { role: string; scopeType: 'system' | 'project'; scopeId: string | null; excludingId: string },
): Promise<number> {
  const rows = await q.query<{ n: number }>(
    `SELECT count(DISTINCT u.id)::int AS n
     FROM role_bindings rb
     JOIN roles ro ON ro.id = rb.role_id AND ro.name = $1
     LEFT JOIN groups g ON rb.subject_type = 'group' AND g.id = rb.subject_id AND g.is_active
     LEFT JOIN group_memberships gm ON gm.group_id = g.id AND gm.is_active
     JOIN users u ON u.is_active AND u.id = CASE WHEN rb.subject_type = 'user' THEN rb.subject_id ELSE gm.user_id END
     WHERE rb.is_active AND rb.id <> $4 AND rb.scope_type = $2 AND rb.scope_id IS NOT DISTINCT FROM $3::uuid`,
    [r.role, r.scopeType, r.scopeId, r.excludingId],
  );
  return rows[0]?.n ?? 0;
}

export interface BindingFilter {
  subjectType?: 'user' | 'group';
  subjectId?: string;
  scopeType?: 'system' | 'project';
  scopeId?: string;
  roleId?: string;
  activeOnly: boolean;
  /** Start after this binding (the cursor); oldest first, so new grants never shift earlier pages. */
  afterId?: string;
  limit: number;
}

/** One extra row tells whether another page exists. */
export async function listRoleBindings(q: Queryable, f: BindingFilter): Promise<{ bindings: RoleBindingRow[]; more: boolean }> {
  const c = new Conditions();
  if (f.activeOnly) c.raw('rb.is_active');
  if (f.subjectType) c.add('rb.subject_type = ?', f.subjectType);
  if (f.subjectId) c.add('rb.subject_id = ?', f.subjectId);
  if (f.scopeType) c.add('rb.scope_type = ?', f.scopeType);
  if (f.scopeId) c.add('rb.scope_id = ?', f.scopeId);
  if (f.roleId) c.add('rb.role_id = ?', f.roleId);
  if (f.afterId) c.add('(rb.created_at, rb.id) > (SELECT c.created_at, c.id FROM role_bindings c WHERE c.id = ?)', f.afterId);
  const limit = c.param(f.limit + 1);
  const rows = await q.query<RoleBindingRow>(
    `SELECT ${BINDING_COLUMNS} FROM role_bindings rb JOIN roles r ON r.id = rb.role_id ${c.where()} ORDER BY rb.created_at, rb.id LIMIT ${limit}`,
    c.params,
  );
  return { bindings: rows.slice(0, f.limit), more: rows.length > f.limit };
}

/** Does a user or group with this id exist? */
export async function subjectExists(q: Queryable, subjectType: 'user' | 'group', subjectId: string): Promise<boolean> {
  const table = subjectType === 'user' ? 'users' : 'groups';
  const rows = await q.query<{ ok: boolean }>(`SELECT EXISTS (SELECT 1 FROM ${table} WHERE id = $1) AS ok`, [subjectId]);
  return rows[0]?.ok === true;
}
