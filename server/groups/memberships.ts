import type { Queryable } from '../db';

/** The one read of memberships other domains need: the active groups a user is in (for /v1/users/me). */
export async function activeGroupIds(q: Queryable, userId: string): Promise<string[]> {
  const rows = await q.query<{ group_id: string }>(
    'SELECT gm.group_id FROM group_memberships gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = $1 AND gm.is_active AND g.is_active ORDER BY gm.group_id',
    [userId],
  );
  return rows.map((r) => r.group_id);
}
