// Other domains' list queries filter by what a user may see through this one SQL fragment, so
// they never import the rbac store.
/**
 * SQL that is true when user `$<userParam>` holds `action` (or `*`) through an active binding,
 * direct or through an active group membership, at system scope or at the project named by
 * `projectExpr`. Lets list queries filter by visibility in one statement instead of one
 * permission check per row. Only our own fixed expressions go in here, never client input.
 */
export function grantsActionSql(userParam: string, actionParam: string, projectExpr: string): string {
  return `EXISTS (
    SELECT 1 FROM role_bindings rb
    JOIN role_permissions rp ON rp.role_id = rb.role_id
    WHERE rb.is_active
      AND (rp.action = ${actionParam} OR rp.action = '*')
      AND (rb.scope_type = 'system' OR (rb.scope_type = 'project' AND rb.scope_id = ${projectExpr}))
      AND (
        (rb.subject_type = 'user' AND rb.subject_id = ${userParam})
        OR (rb.subject_type = 'group' AND rb.subject_id IN (
              SELECT gm.group_id FROM group_memberships gm JOIN groups g ON g.id = gm.group_id
              WHERE gm.user_id = ${userParam} AND gm.is_active AND g.is_active))
      ))`;
}
