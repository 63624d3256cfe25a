import type { Db, Queryable } from '../db';
import { PgErrorCode, pgErrorCode } from '../db';
import { appendAudit } from '../audit/record';
import { conflict, notFound } from '../http/problem';
import type { AdminAct } from '../users/service';
import { findUserById } from '../users/store';
import {
  activateMembership,
  deactivateMembership,
  findGroup,
  findGroupBySlug,
  findMembership,
  insertGroup,
  lockGroup,
  updateGroup,
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

const slugTaken = (slug: string) => conflict(`The group slug "${slug}" is already taken`);

export async function createGroup(db: Db, act: AdminAct, input: { slug: string; displayName: string }): Promise<GroupRow> {
  if (await findGroupBySlug(db, input.slug)) throw slugTaken(input.slug);
  return db.transaction(async (tx) => {
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
export async function changeGroup(db: Db, act: AdminAct, id: string, patch: { displayName?: string; isActive?: boolean }): Promise<GroupRow> {
  return db.transaction(async (tx) => {
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
export async function deleteGroup(db: Db, act: AdminAct, id: string): Promise<void> {
  await db.transaction(async (tx) => {
    const group = await lockedGroup(tx, id);
    if (!group.is_active) return;
    await updateGroup(tx, id, { isActive: false, by: act.by.userId });
    await auditGroup(tx, act, 'group_deleted', id);
  });
}

/** `added` is false when the user already was an active member: adding is idempotent. */
export async function addMember(db: Db, act: AdminAct, groupId: string, userId: string): Promise<{ membership: MembershipRow; added: boolean }> {
  return db.transaction(async (tx) => {
    await lockedGroup(tx, groupId);
    if (!(await findUserById(tx, userId))) throw notFound('User');
    const added = await activateMembership(tx, groupId, userId, act.by.userId);
    if (added) await auditGroup(tx, act, 'group_member_added', groupId, { user_id: userId });
    return { membership: (await findMembership(tx, groupId, userId))!, added };
  });
}

export async function removeMember(db: Db, act: AdminAct, groupId: string, userId: string): Promise<void> {
  await db.transaction(async (tx) => {
    await lockedGroup(tx, groupId);
    if (!(await deactivateMembership(tx, groupId, userId, act.by.userId))) throw notFound('Membership');
    await auditGroup(tx, act, 'group_member_removed', groupId, { user_id: userId });
  });
}
