import type { Queryable } from '../db';
import { bindRole } from '../rbac/bindings';
import { insertProject, type ProjectRow } from './store';

/*
 * Every user, `system` included, has exactly one default project, which they own: work created
 * without a project goes there. The users domain creates it in the transaction creating the user
 * and other domains look it up, so it is this narrow module rather than a ProjectService method.
 */

const defaultProjectSlug = (userId: string) => `default-${userId}`;

export async function findDefaultProject(q: Queryable, userId: string): Promise<ProjectRow | null> {
  const rows = await q.query<ProjectRow>('SELECT * FROM projects WHERE default_for_user_id = $1', [userId]);
  return rows[0] ?? null;
}

/** In the caller's transaction: the user's default project, owned by them. */
export async function createDefaultProject(tx: Queryable, user: { id: string; handle: string }, createdBy: string | null): Promise<ProjectRow> {
  const project = await insertProject(tx, {
    slug: defaultProjectSlug(user.id),
    displayName: 'Default Project',
    description: `Default project of ${user.handle}`,
    defaultForUserId: user.id,
    createdBy: createdBy ?? user.id,
  });
  await bindRole(tx, { subjectType: 'user', subjectId: user.id, role: 'owner', scopeType: 'project', scopeId: project.id, by: createdBy });
  return project;
}
