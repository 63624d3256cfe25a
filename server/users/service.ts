import type { Db, Queryable } from '../db';
import { PgErrorCode, pgErrorCode } from '../db';
import { appendAudit, type AuditEntry } from '../audit/record';
import type { ApiKeyService } from '../api-keys/service';
import { endUserSessions } from '../auth/sessions';
import { activeGroupIds } from '../groups/memberships';
import type { Principal, RequestContext } from '../http/principal';
import { badRequest, conflict, notFound, unauthorized } from '../http/problem';
import { decodeCursor, encodeCursor } from '../http/schemas';
import { hashPassword, verifyPassword } from '../identity/passwords';
import { requireSignedIn } from '../identity/signed-in';
import { createDefaultProject, findDefaultProject } from '../projects/default-project';
import { systemRoleNames } from '../rbac/bindings';
import type { Authorizer } from '../rbac/service';
import { firstRunPasswordUser, removeFirstRunPasswordFile } from './first-run-password';
import {
  findUserByEmail,
  findUserByHandle,
  findUserById,
  findUserView,
  getPasswordHash,
  insertUser,
  listUserViews,
  lockUser,
  setPasswordHash,
  setUserActive,
  updateUserProfile,
  type UserRow,
  type UserView,
} from './store';

export const RESERVED_HANDLES = new Set(['system']);

/** Who makes an admin change and the request behind it: both go into the audit row. */
export interface AdminAct {
  by: Principal;
  ctx: RequestContext;
}

/**
 * Every way a password is set, each with its own checks, sessions to end and audit row; all of
 * them go through UserService.setPassword.
 */
export type PasswordChange =
  /** The signed-in user changes their own: the session that made the change stays. */
  | { kind: 'own'; by: Principal; ctx: RequestContext; currentPassword: string }
  /** An admin sets a user's; by a `local` principal (`cynode reset-password`), the machine is the authority. */
  | { kind: 'reset'; by: Principal; ctx: RequestContext; userId: string }
  /** Chosen at the machine in place of the generated first-run password. */
  | { kind: 'first_run'; ctx: RequestContext }
  /** The first password of a user being created, in the transaction creating them. */
  | { kind: 'initial'; tx: Queryable; userId: string };

/** What /v1/users/me answers. */
export interface Me {
  user: UserRow;
  roles: string[];
  groupIds: string[];
  defaultProjectId: string | null;
}

/** How one password change is carried out once the new password is hashed. */
interface PasswordPlan {
  /** Inside the transaction: the user whose password it is, locked where that matters. */
  target: (tx: Queryable) => Promise<{ id: string; handle: string }>;
  sessionsEndReason: string;
  keepSessionId: string | null;
  audit: (user: { id: string; handle: string }, sessionsRevoked: number) => AuditEntry;
  ctx: RequestContext;
}

// Email domains are case-insensitive and nobody relies on a case-sensitive local part: one
// spelling per address keeps the uniqueness rule meaningful.
const normalizeEmail = (email: string | null | undefined) => (email == null ? email : email.trim().toLowerCase());

const isHandleCursor = (v: unknown): v is { handle: string } => typeof v === 'object' && v !== null && typeof (v as { handle: unknown }).handle === 'string';

/**
 * Users: admin management (every method taking an AdminAct needs `users.manage`), the caller's
 * own account, and the one path every password takes.
 */
export class UserService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly apiKeys: ApiKeyService,
    /** Removed once the generated first-run password no longer opens anything. */
    private readonly firstRunPasswordFile: string,
  ) {}

  /**
   * A user together with their default project (which they own): every user, `system` included,
   * has exactly one, and work created without a project goes there.
   */
  async createWithDefaultProject(tx: Queryable, u: { handle: string; email?: string | null; displayName?: string | null; isSystem?: boolean }, createdBy: string | null): Promise<UserRow> {
    let user: UserRow;
    try {
      user = await insertUser(tx, u);
    } catch (err) {
      if (pgErrorCode(err) === PgErrorCode.uniqueViolation) throw conflict('A user with this handle or email already exists');
      throw err;
    }
    await createDefaultProject(tx, user, createdBy);
    return user;
  }

  findByHandle(handle: string, q: Queryable = this.db): Promise<UserRow | null> {
    return findUserByHandle(q, handle);
  }

  /** An admin creates a user who can sign in with the given password at once. */
  async create(act: AdminAct, input: { handle: string; password: string; email?: string | null; displayName?: string | null }): Promise<UserView> {
    await this.authorize(act);
    if (RESERVED_HANDLES.has(input.handle)) throw badRequest(`The handle "${input.handle}" is reserved and cannot be given to a user`);
    const email = normalizeEmail(input.email);
    // Answer the common conflicts before spending a password hash on them.
    if (await findUserByHandle(this.db, input.handle)) throw conflict(`The handle "${input.handle}" is already taken`);
    await assertEmailFree(this.db, email, null);
    return this.db.transaction(async (tx) => {
      const user = await this.createWithDefaultProject(tx, { handle: input.handle, email, displayName: input.displayName }, act.by.userId);
      await this.setPassword({ kind: 'initial', tx, userId: user.id }, input.password);
      await auditUser(tx, act, 'user_created', user.id, { handle: user.handle });
      return viewOf(tx, user.id);
    });
  }

  /** Ordered by handle; the cursor is checked after the caller's right to list. */
  async list(act: AdminAct, f: { isActive?: boolean; cursor?: string; limit: number }): Promise<{ users: UserView[]; nextCursor?: string }> {
    await this.authorize(act);
    const after = decodeCursor(f.cursor, isHandleCursor);
    // One extra row tells whether another page exists.
    const rows = await listUserViews(this.db, { isActive: f.isActive, afterHandle: after?.handle, limit: f.limit + 1 });
    const users = rows.slice(0, f.limit);
    const last = users.at(-1);
    return { users, ...(rows.length > f.limit && last ? { nextCursor: encodeCursor({ handle: last.handle }) } : {}) };
  }

  async get(act: AdminAct, id: string): Promise<UserView> {
    await this.authorize(act, id);
    return viewOf(this.db, id);
  }

  /** Profile changes only: the handle is fixed for life (which also keeps `system` reserved). */
  async update(act: AdminAct, id: string, patch: { email?: string | null; displayName?: string | null }): Promise<UserView> {
    await this.authorize(act, id);
    return this.db.transaction(async (tx) => {
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
  async disable(act: AdminAct, id: string): Promise<UserView> {
    await this.authorize(act, id);
    return this.db.transaction(async (tx) => {
      const user = await lockedUser(tx, id);
      if (user.is_system) throw conflict('The system user cannot be disabled: it attributes the actions nobody typed');
      // Also what keeps the last admin from locking everyone out by accident.
      if (user.id === act.by.userId) throw conflict('You cannot disable your own account; another admin has to');
      const sessionsRevoked = await endUserSessions(tx, id, 'user_disabled');
      const apiKeysRevoked = await this.apiKeys.revokeAllOf(tx, id);
      if (user.is_active) {
        await setUserActive(tx, id, false);
        await auditUser(tx, act, 'user_disabled', id, { sessions_revoked: sessionsRevoked, api_keys_revoked: apiKeysRevoked });
      }
      return viewOf(tx, id);
    });
  }

  async enable(act: AdminAct, id: string): Promise<UserView> {
    await this.authorize(act, id);
    return this.db.transaction(async (tx) => {
      const user = await lockedUser(tx, id);
      if (!user.is_active) {
        await setUserActive(tx, id, true);
        await auditUser(tx, act, 'user_enabled', id);
      }
      return viewOf(tx, id);
    });
  }

  /** Signs the user out everywhere; their API keys are separate credentials and stay. */
  async revokeSessions(act: AdminAct, id: string): Promise<void> {
    await this.authorize(act, id);
    await this.db.transaction(async (tx) => {
      await lockedUser(tx, id);
      const sessionsRevoked = await endUserSessions(tx, id, 'revoked_by_admin');
      await auditUser(tx, act, 'sessions_revoked', id, { sessions_revoked: sessionsRevoked });
    });
  }

  /** The caller's own account: 401 when it no longer exists. */
  async me(principal: Principal): Promise<Me> {
    const user = await findUserById(this.db, principal.userId);
    if (!user) throw unauthorized();
    const [roles, groupIds, project] = await Promise.all([systemRoleNames(this.db, user.id), activeGroupIds(this.db, user.id), findDefaultProject(this.db, user.id)]);
    return { user, roles, groupIds, defaultProjectId: project?.id ?? null };
  }

  /**
   * Every password change goes through here. A new password ends the user's sessions (whoever
   * knew the old one is out too), but the one that changed its own; the change is audited in
   * its transaction. Once it replaced the generated first-run password, that file goes.
   */
  async setPassword(change: PasswordChange, password: string): Promise<void> {
    if (change.kind === 'initial') {
      // Part of creating the user, who has no sessions yet; the creation is what gets audited.
      await setPasswordHash(change.tx, change.userId, await hashPassword(password));
      return;
    }
    const plan = await this.passwordPlan(change);
    // Hashed outside the transaction: it takes a while and needs no lock.
    const hash = await hashPassword(password);
    const replacedFirstRun = await this.db.transaction(async (tx) => {
      const user = await plan.target(tx);
      const replaced = await setPasswordHash(tx, user.id, hash);
      const sessionsRevoked = await endUserSessions(tx, user.id, plan.sessionsEndReason, plan.keepSessionId);
      await appendAudit(tx, plan.audit(user, sessionsRevoked), plan.ctx);
      return replaced;
    });
    if (replacedFirstRun || change.kind === 'first_run') await removeFirstRunPasswordFile(this.firstRunPasswordFile);
  }

  /** The checks that come before hashing (they are cheap, a hash is not), and what the change then does. */
  private async passwordPlan(change: Exclude<PasswordChange, { kind: 'initial' }>): Promise<PasswordPlan> {
    switch (change.kind) {
      case 'own': {
        const p = change.by;
        await requireSignedIn(this.db, p, 'password.change', 'change the password', change.ctx);
        const current = await getPasswordHash(this.db, p.userId);
        if (!current || !(await verifyPassword(current, change.currentPassword))) throw unauthorized('Current password is wrong');
        return {
          target: async () => ({ id: p.userId, handle: p.handle }),
          sessionsEndReason: 'password_changed',
          keepSessionId: p.sessionId ?? null,
          audit: () => ({ category: 'auth', action: 'password_changed', outcome: 'success', actorId: p.userId, actorHandle: p.handle, resourceType: 'user', resourceId: p.userId }),
          ctx: change.ctx,
        };
      }
      case 'reset': {
        const act = { by: change.by, ctx: change.ctx };
        if (change.by.via !== 'local') await this.authorize(act, change.userId);
        const target = await findUserById(this.db, change.userId);
        if (!target) throw notFound('User');
        if (target.is_system) throw conflict('The system user never signs in and has no password to reset');
        return {
          target: (tx) => lockedUser(tx, change.userId),
          sessionsEndReason: 'password_reset',
          keepSessionId: null,
          audit: (user, sessionsRevoked) => adminEntry(act, 'password_reset', user.id, { sessions_revoked: sessionsRevoked }),
          ctx: change.ctx,
        };
      }
      case 'first_run': {
        const alreadySet = () => conflict('The admin password was already chosen; sign in with it');
        if (!(await firstRunPasswordUser(this.db))) throw alreadySet();
        return {
          target: async (tx) => {
            // Held until commit: of two requests at once, the second finds it gone.
            const userId = await firstRunPasswordUser(tx, { lock: true });
            const user = userId ? await findUserById(tx, userId) : null;
            if (!user) throw alreadySet();
            return user;
          },
          // Whoever signed in with the generated password is out.
          sessionsEndReason: 'password_changed',
          keepSessionId: null,
          audit: (user, sessionsRevoked) => ({
            category: 'auth',
            action: 'first_run_password_set',
            outcome: 'success',
            actorId: user.id,
            actorHandle: user.handle,
            resourceType: 'user',
            resourceId: user.id,
            details: { sessions_revoked: sessionsRevoked },
          }),
          ctx: change.ctx,
        };
      }
    }
  }

  private authorize(act: AdminAct, resourceId?: string): Promise<void> {
    return this.authz.require(act.by, 'users.manage', act.ctx, { resourceType: 'user', resourceId });
  }
}

function adminEntry(act: AdminAct, action: string, userId: string, details?: Record<string, unknown>): AuditEntry {
  return { category: 'admin', action, outcome: 'success', actorId: act.by.userId, actorHandle: act.by.handle, resourceType: 'user', resourceId: userId, scopeType: 'system', details };
}

async function auditUser(tx: Queryable, act: AdminAct, action: string, userId: string, details?: Record<string, unknown>): Promise<void> {
  await appendAudit(tx, adminEntry(act, action, userId, details), act.ctx);
}

async function lockedUser(tx: Queryable, id: string): Promise<UserRow> {
  const user = await lockUser(tx, id);
  if (!user) throw notFound('User');
  return user;
}

async function viewOf(q: Queryable, id: string): Promise<UserView> {
  const view = await findUserView(q, id);
  if (!view) throw notFound('User');
  return view;
}

async function assertEmailFree(q: Queryable, email: string | null | undefined, ownerId: string | null): Promise<void> {
  if (!email) return;
  const holder = await findUserByEmail(q, email);
  if (holder && holder.id !== ownerId) throw conflict('Another user already has this email address');
}
