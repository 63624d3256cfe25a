import type { Queryable } from '../db';

/**
 * The active groups of the user given as `$1`, as a subquery other domains embed in their own SQL
 * (`… IN (${ACTIVE_GROUPS_OF_USER})`), so what "a member" means is written once, here.
 */
export const ACTIVE_GROUPS_OF_USER = 'SELECT gm.group_id FROM group_memberships gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = $1 AND gm.is_active AND g.is_active';

/** The one read of memberships other domains need: the active groups a user is in (for /v1/users/me). */
export async function activeGroupIds(q: Queryable, userId: string): Promise<string[]> {
  const rows = await q.query<{ group_id: string }>(`${ACTIVE_GROUPS_OF_USER} ORDER BY gm.group_id`, [userId]);
  return rows.map((r) => r.group_id);
}
