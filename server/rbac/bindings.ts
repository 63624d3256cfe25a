import type { Queryable } from '../db';
import { BINDING_COLUMNS, type RoleBindingRow } from './store';

/*
 * What other domains need of role bindings, and nothing more. These run in the caller's
 * transaction (a user, project or installation being created grants its owner role in the same
 * commit), so they are functions over a Queryable rather than RbacService methods with their own
 * connection; the rest of rbac/store stays private to rbac.
 */

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

export interface ProjectBindingRow extends RoleBindingRow {
  /** The user's handle or the group's slug. */
  subject_name: string | null;
}

/** Who has access to a project, and how. */
export async function listProjectBindings(q: Queryable, projectId: string, activeOnly: boolean): Promise<ProjectBindingRow[]> {
  return q.query<ProjectBindingRow>(
    `SELECT ${BINDING_COLUMNS}, COALESCE(u.handle, g.slug) AS subject_name
     FROM role_bindings rb JOIN roles r ON r.id = rb.role_id
     LEFT JOIN users u ON rb.subject_type = 'user' AND u.id = rb.subject_id
     LEFT JOIN groups g ON rb.subject_type = 'group' AND g.id = rb.subject_id
     WHERE rb.scope_type = 'project' AND rb.scope_id = $1 ${activeOnly ? 'AND rb.is_active' : ''}
     ORDER BY rb.created_at, rb.id`,
    [projectId],
  );
}

