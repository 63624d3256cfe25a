import type { Db, Queryable } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem, badRequest, conflict, forbidden, notFound } from '../http/problem';
import type { ProjectRow } from '../projects/store';
import {
  countRoleHoldersExcept,
  deactivateRoleBinding,
  findRole,
  findRoleBinding,
  hasPermission,
  insertRoleBinding,
  listRoleBindings,
  listRoles,
  lockBindingScope,
  subjectExists,
  type BindingFilter,
  type RoleBindingRow,
  type RoleWithPermissions,
} from './store';

/** Finds a project by id or slug: given by the composition root, so rbac does not import the projects domain it guards. */
export type ProjectLookup = (ref: string) => Promise<ProjectRow | null>;

/**
 * Default deny: an action is allowed only when a role the caller holds (directly or through a
 * group) grants it at system scope or at the project's scope. Denials are audited.
 */
export class Authorizer {
  constructor(
    private readonly db: Db,
    private readonly findProject: ProjectLookup,
  ) {}

  can(principal: Principal, action: string, projectId: string | null = null): Promise<boolean> {
    return hasPermission(this.db, principal.userId, action, projectId);
  }

  /** Throws 403 (and audits the denial) unless the caller may do `action`. */
  async require(principal: Principal, action: string, ctx: RequestContext, scope: { projectId?: string; resourceType?: string; resourceId?: string } = {}): Promise<void> {
    if (await this.can(principal, action, scope.projectId ?? null)) return;
    await this.auditDenial(principal, action, ctx, scope);
    throw forbidden(`You are not allowed to ${action.replace(/[._]/g, ' ')}`);
  }

  /**
   * A project the caller may see, or 404 (never revealing that it exists); then 403 when the
   * caller can see it but may not do `action` in it.
   */
  async requireProject(principal: Principal, ref: string, action: string, ctx: RequestContext): Promise<ProjectRow> {
    const project = await this.findProject(ref);
    if (!project || !(await this.can(principal, 'project.read', project.id))) throw notFound('Project');
    if (action !== 'project.read') await this.require(principal, action, ctx, { projectId: project.id, resourceType: 'project', resourceId: project.id });
    return project;
  }

  private async auditDenial(principal: Principal, action: string, ctx: RequestContext, scope: { projectId?: string; resourceType?: string; resourceId?: string }) {
    await appendAudit(
      this.db,
      {
        category: 'access',
        action,
        outcome: 'deny',
        actorId: principal.userId,
        actorHandle: principal.handle,
        resourceType: scope.resourceType,
        resourceId: scope.resourceId,
        scopeType: scope.projectId ? 'project' : 'system',
        scopeId: scope.projectId ?? null,
        reason: 'no role grants this action',
      },
      ctx,
    );
  }
}

export interface BindingRequest {
  subject_type: 'user' | 'group';
  subject_id: string;
  /** A role name or id. */
  role: string;
  scope_type: 'system' | 'project';
  scope_id?: string;
}

/**
 * Granting and revoking roles. System-scope bindings need `rbac.manage` (admins); project-scope
 * bindings need `project.rbac.manage` on that project (its owners, and admins). Every change is
 * audited in the transaction that makes it.
 */
export class RoleBindingService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
  ) {}

  /** The role map as clients see it. */
  roles(): Promise<RoleWithPermissions[]> {
    return listRoles(this.db);
  }

  /** Every binding at every scope: an admin's view. */
  async search(principal: Principal, f: Omit<BindingFilter, 'roleId'> & { role?: string }, ctx: RequestContext): Promise<{ bindings: RoleBindingRow[]; more: boolean }> {
    await this.authz.require(principal, 'rbac.manage', ctx, { resourceType: 'role_binding' });
    const { role: roleRef, ...filter } = f;
    let roleId: string | undefined;
    if (roleRef !== undefined) {
      const role = await findRole(this.db, roleRef);
      if (!role) throw badRequest(`Unknown role "${roleRef}"; GET /v1/roles lists them`);
      roleId = role.id;
    }
    return listRoleBindings(this.db, { ...filter, roleId });
  }

  /** The binding, and whether this call created it (an identical active one is returned as is). */
  async grant(principal: Principal, req: BindingRequest, ctx: RequestContext): Promise<{ binding: RoleBindingRow; created: boolean }> {
    if (req.scope_type === 'system' && req.scope_id !== undefined) throw badRequest('scope_id must not be given for a system-scope binding');
    if (req.scope_type === 'project' && req.scope_id === undefined) throw badRequest('scope_id (the project id) is required for a project-scope binding');
    const role = await findRole(this.db, req.role);
    if (!role) throw badRequest(`Unknown role "${req.role}"; GET /v1/roles lists them`);
    if (role.scope_type !== req.scope_type) throw badRequest(`Role "${role.name}" applies at ${role.scope_type} scope, not ${req.scope_type} scope`);

    const scopeId = await this.requireManage(principal, req.scope_type, req.scope_id ?? null, ctx, 'grant');
    // After the permission check, so callers without it cannot probe which ids exist.
    if (!(await subjectExists(this.db, req.subject_type, req.subject_id))) throw notFound(req.subject_type === 'user' ? 'User' : 'Group');

    return this.db.transaction(async (tx) => {
      const result = await insertRoleBinding(tx, { subjectType: req.subject_type, subjectId: req.subject_id, roleId: role.id, scopeType: req.scope_type, scopeId, by: principal.userId });
      if (result.created) await this.audit(tx, principal, 'role_binding_created', result.binding, ctx);
      return result;
    });
  }

  /** Soft revoke, effective on the very next request of whoever held it. */
  async revoke(principal: Principal, bindingId: string, ctx: RequestContext): Promise<void> {
    const binding = await findRoleBinding(this.db, bindingId);
    if (!binding) throw notFound('Role binding');
    await this.requireManage(principal, binding.scope_type, binding.scope_id, ctx, 'revoke').catch((err: unknown) => {
      // Name the binding, not the project it points at: the caller may not know that project.
      throw err instanceof HttpProblem && err.status === 404 ? notFound('Role binding') : err;
    });
    if (!binding.is_active) return;

    await this.db.transaction(async (tx) => {
      await lockBindingScope(tx, binding.scope_type, binding.scope_id);
      await this.keepsAHolder(tx, binding);
      const revoked = await deactivateRoleBinding(tx, binding.id, principal.userId);
      if (revoked) await this.audit(tx, principal, 'role_binding_revoked', revoked, ctx);
    });
  }

  /**
   * Throws unless the caller may manage bindings at this scope; returns the project id for
   * project scope. A project the caller cannot see answers 404 (requireProject). A system
   * binding a non-admin names by id to revoke answers 404 too: non-admins cannot list system
   * bindings, so they are never "visible" to them; asking to grant one is simply forbidden.
   */
  private async requireManage(principal: Principal, scopeType: 'system' | 'project', scopeId: string | null, ctx: RequestContext, op: 'grant' | 'revoke'): Promise<string | null> {
    if (scopeType === 'project') return (await this.authz.requireProject(principal, scopeId!, 'project.rbac.manage', ctx)).id;
    if (op === 'revoke' && !(await this.authz.can(principal, 'rbac.manage'))) throw notFound('Role binding');
    await this.authz.require(principal, 'rbac.manage', ctx, { resourceType: 'role_binding' });
    return null;
  }

  /** A project must keep an owner, and the installation an admin, or nobody could manage them. */
  private async keepsAHolder(tx: Queryable, binding: RoleBindingRow): Promise<void> {
    const guarded = (binding.scope_type === 'project' && binding.role === 'owner') || (binding.scope_type === 'system' && binding.role === 'admin');
    if (!guarded) return;
    const left = await countRoleHoldersExcept(tx, { role: binding.role, scopeType: binding.scope_type, scopeId: binding.scope_id, excludingId: binding.id });
    if (left > 0) return;
    throw conflict(binding.role === 'owner' ? 'This is the last owner of the project; grant owner to someone else first' : 'This is the last active admin; grant admin to someone else first');
  }

  private audit(tx: Queryable, principal: Principal, action: string, b: RoleBindingRow, ctx: RequestContext) {
    return appendAudit(
      tx,
      {
        category: 'admin',
        action,
        outcome: 'success',
        actorId: principal.userId,
        actorHandle: principal.handle,
        resourceType: 'role_binding',
        resourceId: b.id,
        scopeType: b.scope_type,
        scopeId: b.scope_id,
        details: { subject_type: b.subject_type, subject_id: b.subject_id, role: b.role },
      },
      ctx,
    );
  }
}
