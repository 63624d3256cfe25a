import type { Queryable } from '../db';

export interface ProjectRow {
  id: string;
  slug: string;
  display_name: string;
  description: string | null;
  is_active: boolean;
  default_for_user_id: string | null;
  created_by: string | null;
  updated_by: string | null;
  created_at: Date;
  updated_at: Date;
}

export async function insertProject(
  q: Queryable,
  p: { slug: string; displayName: string; description?: string | null; defaultForUserId?: string; createdBy: string | null },
): Promise<ProjectRow> {
  const rows = await q.query<ProjectRow>(
    `INSERT INTO projects (slug, display_name, description, default_for_user_id, created_by, updated_by)
     VALUES ($1, $2, $3, $4, $5, $5) RETURNING *`,
    [p.slug, p.displayName, p.description ?? null, p.defaultForUserId ?? null, p.createdBy],
  );
  return rows[0]!;
}

export async function findDefaultProject(q: Queryable, userId: string): Promise<ProjectRow | null> {
  const rows = await q.query<ProjectRow>('SELECT * FROM projects WHERE default_for_user_id = $1', [userId]);
  return rows[0] ?? null;
}

/** By id when `ref` is a uuid, otherwise by slug. */
export async function findProject(q: Queryable, ref: string): Promise<ProjectRow | null> {
  const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
  const rows = await q.query<ProjectRow>(`SELECT * FROM projects WHERE ${byId ? 'id' : 'slug'} = $1`, [ref]);
  return rows[0] ?? null;
}

export const defaultProjectSlug = (userId: string) => `default-${userId}`;
