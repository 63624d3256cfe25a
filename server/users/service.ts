import type { Db, Queryable } from '../db';
import { PgErrorCode, pgErrorCode } from '../db';
import { appendAudit } from '../audit/record';
import { revokeUserApiKeys } from '../api-keys/store';
import { hashPassword } from '../auth/passwords';
import { revokeUserSessions } from '../auth/store';
import type { Principal, RequestContext } from '../http/principal';
import { badRequest, conflict, notFound } from '../http/problem';
import { defaultProjectSlug, insertProject } from '../projects/store';
import { bindRole } from '../rbac/store';
import {
  findUserByEmail,
  findUserByHandle,
  findUserById,
  findUserView,
  insertUser,
  lockUser,
  setPasswordHash,
  setUserActive,
  updateUserProfile,
  type UserRow,
  type UserView,
} from './store';

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

/** Who makes an admin change and the request behind it: both go into the audit row. */
export interface AdminAct {
  by: Principal;
  ctx: RequestContext;
}

// Email domains are case-insensitive and nobody relies on a case-sensitive local part: one
// spelling per address keeps the uniqueness rule meaningful.
const normalizeEmail = (email: string | null | undefined) => (email == null ? email : email.trim().toLowerCase());

async function auditUser(tx: Queryable, act: AdminAct, action: string, userId: string, details?: Record<string, unknown>): Promise<void> {
  await appendAudit(tx, { category: 'admin', action, outcome: 'success', actorId: act.by.userId, actorHandle: act.by.handle, resourceType: 'user', resourceId: userId, scopeType: 'system', details }, act.ctx);
}

async function lockedUser(tx: Queryable, id: string): Promise<UserRow> {
  const user = await lockUser(tx, id);
  if (!user) throw notFound('User');
  return user;
}

async function viewOf(tx: Queryable, id: string): Promise<UserView> {
  const view = await findUserView(tx, id);
  if (!view) throw notFound('User');
  return view;
}

async function assertEmailFree(q: Queryable, email: string | null | undefined, ownerId: string | null): Promise<void> {
  if (!email) return;
  const holder = await findUserByEmail(q, email);
  if (holder && holder.id !== ownerId) throw conflict('Another user already has this email address');
}

/** An admin creates a user who can sign in with the given password at once. */
export async function createUser(db: Db, act: AdminAct, input: { handle: string; password: string; email?: string | null; displayName?: string | null }): Promise<UserView> {
  if (RESERVED_HANDLES.has(input.handle)) throw badRequest(`The handle "${input.handle}" is reserved and cannot be given to a user`);
  const email = normalizeEmail(input.email);
  // Answer the common conflicts before spending a password hash on them.
  if (await findUserByHandle(db, input.handle)) throw conflict(`The handle "${input.handle}" is already taken`);
  await assertEmailFree(db, email, null);
  const passwordHash = await hashPassword(input.password);
  return db.transaction(async (tx) => {
    const user = await createUserWithDefaultProject(tx, { handle: input.handle, email, displayName: input.displayName, passwordHash }, act.by.userId);
    await auditUser(tx, act, 'user_created', user.id, { handle: user.handle });
    return viewOf(tx, user.id);
  });
}

/** Profile changes only: the handle is fixed for life (which also keeps `system` reserved). */
export async function updateUser(db: Db, act: AdminAct, id: string, patch: { email?: string | null; displayName?: string | null }): Promise<UserView> {
  return db.transaction(async (tx) => {
    const user = await lockedUser(tx, id);
    const email = normalizeEmail(patch.email);
    const changed: string[] = [];
    if (email !== undefined && email !== user.email) changed.push('email');
    if (patch.displayName !== undefined && patch.displayName !== user.display_name) changed.push('display_name');
    if (changed.length === 0) return viewOf(tx, id);
    await assertEmailFree(tx, email, id);
    try {
      await updateUserProfile(tx, id, { email, displayName: patch.displayName });
    } catch (err) {
      if (pgErrorCode(err) === PgErrorCode.uniqueViolation) throw conflict('Another user already has this email address');
      throw err;
    }
    await auditUser(tx, act, 'user_updated', id, { fields: changed });
    return viewOf(tx, id);
  });
}

/**
 * Disabled users cannot sign in, and every session and API key they hold ends now, for good:
 * enabling them again restores neither (whoever held a copy while they were out stays out).
 */
export async function disableUser(db: Db, act: AdminAct, id: string): Promise<UserView> {
  return db.transaction(async (tx) => {
    const user = await lockedUser(tx, id);
    if (user.is_system) throw conflict('The system user cannot be disabled: it attributes the actions nobody typed');
    // Also what keeps the last admin from locking everyone out by accident.
    if (user.id === act.by.userId) throw conflict('You cannot disable your own account; another admin has to');
    const sessionsRevoked = await revokeUserSessions(tx, id, 'user_disabled');
    const apiKeysRevoked = await revokeUserApiKeys(tx, id);
    if (user.is_active) {
      await setUserActive(tx, id, false);
      await auditUser(tx, act, 'user_disabled', id, { sessions_revoked: sessionsRevoked, api_keys_revoked: apiKeysRevoked });
    }
    return viewOf(tx, id);
  });
}

export async function enableUser(db: Db, act: AdminAct, id: string): Promise<UserView> {
  return db.transaction(async (tx) => {
    const user = await lockedUser(tx, id);
    if (!user.is_active) {
      await setUserActive(tx, id, true);
      await auditUser(tx, act, 'user_enabled', id);
    }
    return viewOf(tx, id);
  });
}

/**
 * Sets a new password and signs the user out everywhere: whoever knew the old one is out too.
 * True when that replaced the generated first-run password (the caller removes its file).
 */
export async function resetPassword(db: Db, act: AdminAct, id: string, newPassword: string): Promise<boolean> {
  const target = await findUserById(db, id);
  if (!target) throw notFound('User');
  if (target.is_system) throw conflict('The system user never signs in and has no password to reset');
  const passwordHash = await hashPassword(newPassword);
  return db.transaction(async (tx) => {
    await lockedUser(tx, id);
    const replacedFirstRun = await setPasswordHash(tx, id, passwordHash);
    const sessionsRevoked = await revokeUserSessions(tx, id, 'password_reset');
    await auditUser(tx, act, 'password_reset', id, { sessions_revoked: sessionsRevoked });
    return replacedFirstRun;
  });
}

/** Signs the user out everywhere; their API keys are separate credentials and stay. */
export async function revokeSessions(db: Db, act: AdminAct, id: string): Promise<void> {
  await db.transaction(async (tx) => {
    await lockedUser(tx, id);
    const sessionsRevoked = await revokeUserSessions(tx, id, 'revoked_by_admin');
    await auditUser(tx, act, 'sessions_revoked', id, { sessions_revoked: sessionsRevoked });
  });
}
