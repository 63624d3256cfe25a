import type { Queryable } from '../db';

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

/** Adds a binding unless an identical active one exists; returns the binding id either way. */
export async function bindRole(
  q: Queryable,
  b: { subjectType: 'user' | 'group'; subjectId: string; role: string; scopeType: 'system' | 'project'; scopeId: string | null; by: string | null },
): Promise<string> {
  const existing = await q.query<{ id: string }>(
    `SELECT rb.id FROM role_bindings rb JOIN roles r ON r.id = rb.role_id
     WHERE rb.is_active AND rb.subject_type = $1 AND rb.subject_id = $2 AND r.name = $3 AND rb.scope_type = $4
       AND rb.scope_id IS NOT DISTINCT FROM $5`,
    [b.subjectType, b.subjectId, b.role, b.scopeType, b.scopeId],
  );
  if (existing[0]) return existing[0].id;
  const rows = await q.query<{ id: string }>(
    `INSERT INTO role_bindings (subject_type, subject_id, role_id, scope_type, scope_id, updated_by)
     SELECT $1, $2, r.id, $4, $5, $6 FROM roles r WHERE r.name = $3 RETURNING id`,
    [b.subjectType, b.subjectId, b.role, b.scopeType, b.scopeId, b.by],
  );
  if (!rows[0]) throw new Error(`unknown role ${b.role}`);
  return rows[0].id;
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

/** Role names the user holds at system scope (for /users/me). */
export async function systemRoleNames(q: Queryable, userId: string): Promise<string[]> {
  const rows = await q.query<{ name: string }>(
    `SELECT DISTINCT r.name FROM role_bindings rb JOIN roles r ON r.id = rb.role_id
     WHERE rb.is_active AND rb.scope_type = 'system'
       AND ((rb.subject_type = 'user' AND rb.subject_id = $1)
         OR (rb.subject_type = 'group' AND rb.subject_id IN (
               SELECT gm.group_id FROM group_memberships gm JOIN groups g ON g.id = gm.group_id
               WHERE gm.user_id = $1 AND gm.is_active AND g.is_active)))
     ORDER BY r.name`,
    [userId],
  );
  return rows.map((r) => r.name);
}
