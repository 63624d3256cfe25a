import type { Db } from '../db';
import { appendAudit } from '../audit/store';
import type { Principal, RequestContext } from '../http/principal';
import { forbidden, notFound } from '../http/problem';
import { findProject, type ProjectRow } from '../projects/store';
import { hasPermission } from './store';

/**
 * Default deny: an action is allowed only when a role the caller holds (directly or through a
 * group) grants it at system scope or at the project's scope. Denials are audited.
 */
export class Authorizer {
  constructor(private readonly db: Db) {}

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
    const project = await findProject(this.db, ref);
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
