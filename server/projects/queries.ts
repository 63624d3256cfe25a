import type { Queryable } from '../db';
import type { ProjectRow } from './store';

/* What other domains may read about projects outside the Authorizer: a user's default project. */

export async function findDefaultProject(q: Queryable, userId: string): Promise<ProjectRow | null> {
  const rows = await q.query<ProjectRow>('SELECT * FROM projects WHERE default_for_user_id = $1', [userId]);
  return rows[0] ?? null;
}
