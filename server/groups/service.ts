import type { Db, Queryable } from '../db';
import { PgErrorCode, pgErrorCode } from '../db';
import { appendAudit } from '../audit/record';
import { conflict, notFound } from '../http/problem';
import { decodeCursor, encodeCursor } from '../http/schemas';
import type { Authorizer } from '../rbac/service';
import type { AdminAct } from '../users/service';
import {
  activateMembership,
  deactivateMembership,
  findGroup,
  findGroupBySlug,
  findMembership,
  insertGroup,
  listGroups,
  listMemberships,
  lockGroup,
  updateGroup,
  userExists,
  type GroupRow,
  type MembershipRow,
} from './store';

async function auditGroup(tx: Queryable, act: AdminAct, action: string, groupId: string, details?: Record<string, unknown>): Promise<void> {
  await appendAudit(tx, { category: 'admin', action, outcome: 'success', actorId: act.by.userId, actorHandle: act.by.handle, resourceType: 'group', resourceId: groupId, scopeType: 'system', details }, act.ctx);
}

async function lockedGroup(tx: Queryable, id: string) {
  const group = await lockGroup(tx, id);
  if (!group) throw notFound('Group');
  return group;
}

async function groupOf(tx: Queryable, id: string): Promise<GroupRow> {
  const group = await findGroup(tx, id);
  if (!group) throw notFound('Group');
  return group;
}

const cursorOf = <K extends string>(key: K) => (v: unknown): v is Record<K, string> => typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)[key] === 'string';

const slugTaken = (slug: string) => conflict(`The group slug "${slug}" is already taken`);

/** Groups and memberships; every method needs `groups.manage` (the `admin` role) and is audited. */
export class GroupService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
  ) {}

  /** Ordered by slug; the cursor is checked after the caller's right to list. */
  async list(act: AdminAct, f: { isActive?: boolean; cursor?: string; limit: number }): Promise<{ groups: GroupRow[]; nextCursor?: string }> {
    await this.authorize(act);
    const after = decodeCursor(f.cursor, cursorOf('slug'));
    // One extra row tells whether another page exists.
    const rows = await listGroups(this.db, { isActive: f.isActive, afterSlug: after?.slug, limit: f.limit + 1 });
    const groups = rows.slice(0, f.limit);
    const last = groups.at(-1);
    return { groups, ...(rows.length > f.limit && last ? { nextCursor: encodeCursor({ slug: last.slug }) } : {}) };
  }

  async get(act: AdminAct, id: string): Promise<GroupRow> {
    await this.authorize(act, id);
    return groupOf(this.db, id);
  }

  /** Ordered by handle, removed memberships too unless `isActive` says otherwise. */
  async members(act: AdminAct, id: string, f: { isActive?: boolean; cursor?: string; limit: number }): Promise<{ members: MembershipRow[]; nextCursor?: string }> {
    await this.authorize(act, id);
    if (!(await findGroup(this.db, id))) throw notFound('Group');
    const after = decodeCursor(f.cursor, cursorOf('handle'));
    const rows = await listMemberships(this.db, id, { isActive: f.isActive, afterHandle: after?.handle, limit: f.limit + 1 });
    const members = rows.slice(0, f.limit);
    const last = members.at(-1);
    return { members, ...(rows.length > f.limit && last ? { nextCursor: encodeCursor({ handle: last.handle }) } : {}) };
  }

  async create(act: AdminAct, input: { slug: string; displayName: string }): Promise<GroupRow> {
    await this.authorize(act);
    if (await findGroupBySlug(this.db, input.slug)) throw slugTaken(input.slug);
    return this.db.transaction(async (tx) => {
      let id: string;
      try {
        id = await insertGroup(tx, { slug: input.slug, displayName: input.displayName, by: act.by.userId });
      } catch (err) {
        // Someone else took the slug between the check and the insert.
        if (pgErrorCode(err) === PgErrorCode.uniqueViolation) throw slugTaken(input.slug);
        throw err;
      }
      await auditGroup(tx, act, 'group_created', id, { slug: input.slug });
      return groupOf(tx, id);
    });
  }

  /** `is_active: false` switches off every role the group grants; `true` brings them back. */
  async change(act: AdminAct, id: string, patch: { displayName?: string; isActive?: boolean }): Promise<GroupRow> {
    await this.authorize(act, id);
    return this.db.transaction(async (tx) => {
      const group = await lockedGroup(tx, id);
      const changed: Record<string, unknown> = {};
      if (patch.displayName !== undefined && patch.displayName !== group.display_name) changed.display_name = patch.displayName;
      if (patch.isActive !== undefined && patch.isActive !== group.is_active) changed.is_active = patch.isActive;
      if (Object.keys(changed).length > 0) {
        await updateGroup(tx, id, { displayName: patch.displayName, isActive: patch.isActive, by: act.by.userId });
        await auditGroup(tx, act, 'group_updated', id, { fields: Object.keys(changed), ...('is_active' in changed ? { is_active: changed.is_active } : {}) });
      }
      return groupOf(tx, id);
    });
  }

  /**
   * Soft delete: the group stops granting anything, but its memberships and bindings stay on
   * record, so re-activating it restores exactly what it was. Deleting twice changes nothing.
   */
  async delete(act: AdminAct, id: string): Promise<void> {
    await this.authorize(act, id);
    await this.db.transaction(async (tx) => {
      const group = await lockedGroup(tx, id);
      if (!group.is_active) return;
      await updateGroup(tx, id, { isActive: false, by: act.by.userId });
      await auditGroup(tx, act, 'group_deleted', id);
    });
  }

  /** `added` is false when the user already was an active member: adding is idempotent. */
  async addMember(act: AdminAct, groupId: string, userId: string): Promise<{ membership: MembershipRow; added: boolean }> {
    await this.authorize(act, groupId);
    return this.db.transaction(async (tx) => {
      await lockedGroup(tx, groupId);
      if (!(await userExists(tx, userId))) throw notFound('User');
      const added = await activateMembership(tx, groupId, userId, act.by.userId);
      if (added) await auditGroup(tx, act, 'group_member_added', groupId, { user_id: userId });
      return { membership: (await findMembership(tx, groupId, userId))!, added };
    });
  }

  async removeMember(act: AdminAct, groupId: string, userId: string): Promise<void> {
    await this.authorize(act, groupId);
    await this.db.transaction(async (tx) => {
      await lockedGroup(tx, groupId);
      if (!(await deactivateMembership(tx, groupId, userId, act.by.userId))) throw notFound('Membership');
      await auditGroup(tx, act, 'group_member_removed', groupId, { user_id: userId });
    });
  }

  private authorize(act: AdminAct, resourceId?: string): Promise<void> {
    return this.authz.require(act.by, 'groups.manage', act.ctx, { resourceType: 'group', resourceId });
  }
}
