import type { Queryable } from '../db';
import { Conditions } from '../db/sql';
import { grantsActionSql } from '../rbac/visibility';

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

/** By id when `ref` is a uuid, otherwise by slug. */
export async function findProject(q: Queryable, ref: string): Promise<ProjectRow | null> {
  const byId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
  const rows = await q.query<ProjectRow>(`SELECT * FROM projects WHERE ${byId ? 'id' : 'slug'} = $1`, [ref]);
  return rows[0] ?? null;
}

export const defaultProjectSlug = (userId: string) => `default-${userId}`;

export interface ProjectFilter {
  /** Only projects this user may read (see grantsActionSql). */
  visibleTo: string;
  activeOnly: boolean;
  /** Case-insensitive substring of slug, display name or description. */
  text?: string;
  /** Start after this slug (the cursor); slugs are unique and never change. */
  afterSlug?: string;
  limit: number;
}

/** One statement, visibility included; one extra row tells whether another page exists. */
export async function listVisibleProjects(q: Queryable, f: ProjectFilter): Promise<{ projects: ProjectRow[]; more: boolean }> {
  const c = new Conditions([f.visibleTo, 'project.read'], [grantsActionSql('$1::uuid', '$2', 'p.id')]);
  if (f.activeOnly) c.raw('p.is_active');
  // strpos rather than LIKE: the client's text is matched literally, `%` and `_` included.
  if (f.text) c.add(`(strpos(lower(p.slug), ?) > 0 OR strpos(lower(p.display_name), ?) > 0 OR strpos(lower(COALESCE(p.description, '')), ?) > 0)`, f.text.toLowerCase());
  if (f.afterSlug !== undefined) c.add('p.slug > ?', f.afterSlug);
  const limit = c.param(f.limit + 1);
  const rows = await q.query<ProjectRow>(`SELECT p.* FROM projects p ${c.where()} ORDER BY p.slug LIMIT ${limit}`, c.params);
  return { projects: rows.slice(0, f.limit), more: rows.length > f.limit };
}

/** Applies the given fields only; `description: null` clears it. */
export async function updateProject(
  q: Queryable,
  id: string,
  patch: { displayName?: string; description?: string | null; isActive?: boolean },
  by: string,
): Promise<ProjectRow | null> {
  const params: unknown[] = [id, by];
  const sets = ['updated_at = now()', 'updated_by = $2'];
  const set = (column: string, value: unknown) => {
    params.push(value);
    sets.push(`${column} = $${params.length}`);
  };
  if (patch.displayName !== undefined) set('display_name', patch.displayName);
  if (patch.description !== undefined) set('description', patch.description);
  if (patch.isActive !== undefined) set('is_active', patch.isActive);
  const rows = await q.query<ProjectRow>(`UPDATE projects SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, params);
  return rows[0] ?? null;
}
