import type { Queryable } from '../db';

export interface GroupRow {
  id: string;
  slug: string;
  display_name: string;
  is_active: boolean;
  /** Active memberships. */
  member_count: number;
  created_at: Date;
  updated_at: Date;
}

export interface MembershipRow {
  group_id: string;
  user_id: string;
  handle: string;
  is_active: boolean;
  created_at: Date;
  updated_at: Date;
  updated_by: string | null;
}

const GROUP = `SELECT g.id, g.slug, g.display_name, g.is_active, g.created_at, g.updated_at,
  (SELECT count(*) FROM group_memberships gm WHERE gm.group_id = g.id AND gm.is_active)::int AS member_count
  FROM groups g`;

const MEMBERSHIP = `SELECT gm.group_id, gm.user_id, u.handle, gm.is_active, gm.created_at, gm.updated_at, gm.updated_by
  FROM group_memberships gm JOIN users u ON u.id = gm.user_id`;

export async function insertGroup(q: Queryable, g: { slug: string; displayName: string; by: string }): Promise<string> {
  const rows = await q.query<{ id: string }>('INSERT INTO groups (slug, display_name, updated_by) VALUES ($1, $2, $3) RETURNING id', [g.slug, g.displayName, g.by]);
  return rows[0]!.id;
}

export async function findGroup(q: Queryable, id: string): Promise<GroupRow | null> {
  const rows = await q.query<GroupRow>(`${GROUP} WHERE g.id = $1`, [id]);
  return rows[0] ?? null;
}

export async function findGroupBySlug(q: Queryable, slug: string): Promise<{ id: string } | null> {
  const rows = await q.query<{ id: string }>('SELECT id FROM groups WHERE slug = $1', [slug]);
  return rows[0] ?? null;
}

/** Holds the group's row until the transaction ends, so membership changes line up behind it. */
export async function lockGroup(q: Queryable, id: string): Promise<{ id: string; display_name: string; is_active: boolean } | null> {
  const rows = await q.query<{ id: string; display_name: string; is_active: boolean }>('SELECT id, display_name, is_active FROM groups WHERE id = $1 FOR UPDATE', [id]);
  return rows[0] ?? null;
}

/** Ordered by slug; the page after `afterSlug` when given. */
export async function listGroups(q: Queryable, f: { isActive?: boolean; afterSlug?: string; limit: number }): Promise<GroupRow[]> {
  const params: unknown[] = [];
  const where: string[] = [];
  if (f.isActive !== undefined) {
    params.push(f.isActive);
    where.push(`g.is_active = $${params.length}`);
  }
  if (f.afterSlug !== undefined) {
    params.push(f.afterSlug);
    where.push(`g.slug > $${params.length}`);
  }
  params.push(f.limit);
  return q.query<GroupRow>(`${GROUP} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY g.slug LIMIT $${params.length}`, params);
}

/** Sets the given fields; leaves the others as they are. */
export async function updateGroup(q: Queryable, id: string, patch: { displayName?: string; isActive?: boolean; by: string }): Promise<void> {
  const params: unknown[] = [id, patch.by];
  const sets = ['updated_by = $2', 'updated_at = now()'];
  if (patch.displayName !== undefined) {
    params.push(patch.displayName);
    sets.push(`display_name = $${params.length}`);
  }
  if (patch.isActive !== undefined) {
    params.push(patch.isActive);
    sets.push(`is_active = $${params.length}`);
  }
  await q.query(`UPDATE groups SET ${sets.join(', ')} WHERE id = $1`, params);
}

export async function findMembership(q: Queryable, groupId: string, userId: string): Promise<MembershipRow | null> {
  const rows = await q.query<MembershipRow>(`${MEMBERSHIP} WHERE gm.group_id = $1 AND gm.user_id = $2`, [groupId, userId]);
  return rows[0] ?? null;
}

/** Ordered by handle; the page after `afterHandle` when given. */
export async function listMemberships(q: Queryable, groupId: string, f: { isActive?: boolean; afterHandle?: string; limit: number }): Promise<MembershipRow[]> {
  const params: unknown[] = [groupId];
  const where = ['gm.group_id = $1'];
  if (f.isActive !== undefined) {
    params.push(f.isActive);
    where.push(`gm.is_active = $${params.length}`);
  }
  if (f.afterHandle !== undefined) {
    params.push(f.afterHandle);
    where.push(`u.handle > $${params.length}`);
  }
  params.push(f.limit);
  return q.query<MembershipRow>(`${MEMBERSHIP} WHERE ${where.join(' AND ')} ORDER BY u.handle LIMIT $${params.length}`, params);
}

/**
 * Makes the user an active member, re-activating a removed membership rather than adding a
 * second row. False when they already were an active member (nothing changed).
 */
export async function activateMembership(q: Queryable, groupId: string, userId: string, by: string): Promise<boolean> {
  const rows = await q.query<{ id: string }>(
    `INSERT INTO group_memberships (group_id, user_id, updated_by) VALUES ($1, $2, $3)
     ON CONFLICT (group_id, user_id) DO UPDATE SET is_active = true, updated_at = now(), updated_by = EXCLUDED.updated_by
       WHERE NOT group_memberships.is_active
     RETURNING id`,
    [groupId, userId, by],
  );
  return rows.length > 0;
}

/** Soft removal: the row stays as the record of who was a member. False when not an active member. */
export async function deactivateMembership(q: Queryable, groupId: string, userId: string, by: string): Promise<boolean> {
  const rows = await q.query<{ id: string }>(
    `UPDATE group_memberships SET is_active = false, updated_at = now(), updated_by = $3
     WHERE group_id = $1 AND user_id = $2 AND is_active RETURNING id`,
    [groupId, userId, by],
  );
  return rows.length > 0;
}

export async function userExists(q: Queryable, userId: string): Promise<boolean> {
  const rows = await q.query<{ ok: boolean }>('SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) AS ok', [userId]);
  return rows[0]?.ok === true;
}
