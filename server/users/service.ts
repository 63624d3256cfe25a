import type { Queryable } from '../db';
import { PgErrorCode, pgErrorCode } from '../db';
import { conflict } from '../http/problem';
import { defaultProjectSlug, insertProject } from '../projects/store';
import { bindRole } from '../rbac/store';
import { insertUser, setPasswordHash, type UserRow } from './store';

export const RESERVED_HANDLES = new Set(['system']);

/**
 * A user together with their default project (which they own): every user, `system` included,
 * has exactly one, and work created without a project goes there.
 */
export async function createUserWithDefaultProject(
  tx: Queryable,
  u: { handle: string; email?: string | null; displayName?: string | null; passwordHash?: string; isSystem?: boolean },
  createdBy: string | null,
): Promise<UserRow> {
  let user: UserRow;
  try {
    user = await insertUser(tx, u);
  } catch (err) {
    if (pgErrorCode(err) === PgErrorCode.uniqueViolation) throw conflict('A user with this handle or email already exists');
    throw err;
  }
  if (u.passwordHash) await setPasswordHash(tx, user.id, u.passwordHash);
  const project = await insertProject(tx, {
    slug: defaultProjectSlug(user.id),
    displayName: 'Default Project',
    description: `Default project of ${user.handle}`,
    defaultForUserId: user.id,
    createdBy: createdBy ?? user.id,
  });
  await bindRole(tx, { subjectType: 'user', subjectId: user.id, role: 'owner', scopeType: 'project', scopeId: project.id, by: createdBy });
  return user;
}
