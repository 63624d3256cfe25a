import type { Db, Queryable } from '../db';
import { PgErrorCode, pgErrorCode } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { badRequest, conflict } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import { bindRole, listProjectBindings, type ProjectBindingRow } from '../rbac/bindings';
import { insertProject, listVisibleProjects, updateProject, type ProjectFilter, type ProjectRow } from './store';

/** Default projects are created with the user and named after them; nobody else may take the prefix. */
const RESERVED_SLUG_PREFIX = 'default-';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ProjectChanges {
  display_name?: string;
  /** An empty string clears it. */
  description?: string;
  is_active?: boolean;
}

/** Projects: who sees them is decided by role bindings (Authorizer); every change is audited. */
export class ProjectService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
  ) {}

  list(principal: Principal, f: Omit<ProjectFilter, 'visibleTo'>): Promise<{ projects: ProjectRow[]; more: boolean }> {
    return listVisibleProjects(this.db, { ...f, visibleTo: principal.userId });
  }

  get(principal: Principal, ref: string, ctx: RequestContext): Promise<ProjectRow> {
    return this.authz.requireProject(principal, ref, 'project.read', ctx);
  }

  /** Anyone who can read the project may see who else can. */
  async bindings(principal: Principal, ref: string, activeOnly: boolean, ctx: RequestContext): Promise<ProjectBindingRow[]> {
    const project = await this.authz.requireProject(principal, ref, 'project.read', ctx);
    return listProjectBindings(this.db, project.id, activeOnly);
  }

  /**
   * Any signed-in user may create projects: an implicit grant of every active user,
   * not a role permission, so no binding is checked. The creator becomes the project's owner.
   */
  async create(principal: Principal, p: { slug: string; display_name: string; description?: string }, ctx: RequestContext): Promise<ProjectRow> {
    if (p.slug.startsWith(RESERVED_SLUG_PREFIX)) throw badRequest(`slug must not start with "${RESERVED_SLUG_PREFIX}": it is reserved for default projects`);
    // A uuid-shaped slug could never be looked up by slug: references that look like ids are ids.
    if (UUID.test(p.slug)) throw badRequest('slug must not look like a project id');
    return this.db.transaction(async (tx) => {
      const project = await insertUnique(tx, { slug: p.slug, displayName: p.display_name, description: p.description || null, createdBy: principal.userId });
      await bindRole(tx, { subjectType: 'user', subjectId: principal.userId, role: 'owner', scopeType: 'project', scopeId: project.id, by: principal.userId });
      await this.audit(tx, principal, 'project_created', project, ctx, { slug: project.slug, owner: principal.userId });
      return project;
    });
  }

  async update(principal: Principal, ref: string, changes: ProjectChanges, ctx: RequestContext): Promise<ProjectRow> {
    const project = await this.authz.requireProject(principal, ref, 'project.update', ctx);
    // Deactivating is deleting by another name: it needs the same right and has the same limits.
    if (changes.is_active === false && project.is_active) await this.requireDeletable(principal, project, ctx);
    const patch = {
      displayName: changes.display_name,
      description: changes.description === undefined ? undefined : changes.description || null,
      isActive: changes.is_active,
    };
    const changed = changedFields(project, patch);
    if (changed.length === 0) return project;
    return this.db.transaction(async (tx) => {
      const updated = (await updateProject(tx, project.id, patch, principal.userId))!;
      await this.audit(tx, principal, 'project_updated', updated, ctx, { changed });
      return updated;
    });
  }

  /** Soft delete: the project and everything naming it stay, inactive. */
  async delete(principal: Principal, ref: string, ctx: RequestContext): Promise<ProjectRow> {
    const project = await this.authz.requireProject(principal, ref, 'project.delete', ctx);
    await this.requireDeletable(principal, project, ctx);
    if (!project.is_active) return project;
    return this.db.transaction(async (tx) => {
      const updated = (await updateProject(tx, project.id, { isActive: false }, principal.userId))!;
      await this.audit(tx, principal, 'project_deleted', updated, ctx, { slug: updated.slug });
      return updated;
    });
  }

  private async requireDeletable(principal: Principal, project: ProjectRow, ctx: RequestContext): Promise<void> {
    await this.authz.require(principal, 'project.delete', ctx, { projectId: project.id, resourceType: 'project', resourceId: project.id });
    // Work created without a project lands in the default one, so it must always exist.
    if (project.default_for_user_id) throw conflict('A default project cannot be deleted or deactivated');
  }

  private audit(tx: Queryable, principal: Principal, action: string, project: ProjectRow, ctx: RequestContext, details: Record<string, unknown>) {
    return appendAudit(
      tx,
      { category: 'admin', action, outcome: 'success', actorId: principal.userId, actorHandle: principal.handle, resourceType: 'project', resourceId: project.id, scopeType: 'project', scopeId: project.id, details },
      ctx,
    );
  }
}

async function insertUnique(tx: Queryable, p: Parameters<typeof insertProject>[1]): Promise<ProjectRow> {
  try {
    return await insertProject(tx, p);
  } catch (err) {
    if (pgErrorCode(err) === PgErrorCode.uniqueViolation) throw conflict(`A project with slug "${p.slug}" already exists`);
    throw err;
  }
}

function changedFields(p: ProjectRow, patch: { displayName?: string; description?: string | null; isActive?: boolean }): string[] {
  const changed: string[] = [];
  if (patch.displayName !== undefined && patch.displayName !== p.display_name) changed.push('display_name');
  if (patch.description !== undefined && patch.description !== p.description) changed.push('description');
  if (patch.isActive !== undefined && patch.isActive !== p.is_active) changed.push('is_active');
  return changed;
}
