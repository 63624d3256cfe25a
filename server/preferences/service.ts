import type { Db, Queryable } from '../db';
import type { Principal, RequestContext } from '../http/principal';
import { HttpProblem, badRequest, conflict, forbidden, notFound } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import { redactAll, redactJson } from '../redaction/redaction';
import type { TaskRow } from '../tasks/store';
import { KNOWN_KEYS, checkKey, checkValue, invalidReason } from './keys';
import {
  appendPreferenceAudit,
  deletePreference,
  findPreference,
  foldCandidates,
  insertPreference,
  isActiveGroupMember,
  listAtScope,
  listPreferenceAudit,
  lockPreference,
  scopeSubjectExists,
  updatePreference,
  type AuditFilter,
  type PreferenceAuditRow,
  type PreferenceRow,
  type ScopeType,
  type ValueType,
} from './store';

/** Tasks the caller may read, by id or their own task name; 404 otherwise (TaskService.get). */
export interface TaskLookup {
  get(principal: Principal, ref: string): Promise<TaskRow>;
}

/** A scope as the client names it; `id` is a project's slug or a task's name where those allow. */
export interface ScopeRef {
  type: ScopeType;
  id?: string;
}

/** A scope resolved to its object's id (null for system). */
export interface Scope {
  type: ScopeType;
  id: string | null;
}

export interface EffectiveSource {
  key: string;
  /** `default`: no scope sets the key, CyNode's own default applies (known keys only). */
  scope_type: ScopeType | 'default';
  scope_id: string | null;
  version: number;
}

export interface Effective {
  effective: Record<string, unknown>;
  sources: EffectiveSource[];
  invalid: Array<{ key: string; scope_type: ScopeType; scope_id: string | null; version: number; reason: string }>;
}

export interface WriteOptions {
  expectedVersion?: number;
  reason?: string;
}

const ADMIN = 'preferences.manage';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Agents never change the settings that bound agents (`agents.*`: approval mode, step and time
 * limits, model): an agent could otherwise turn its own approvals off.
 */
function agentMayWrite(principal: Principal, key: string): void {
  if (principal.via === 'agent' && key.startsWith('agents.')) throw forbidden('Agents may not change agents.* preferences; the user sets them');
}

const stale = (current: number | null, expected: number) =>
  new HttpProblem(409, current === null ? `The preference does not exist (expected version ${expected})` : `The preference is at version ${current}, not ${expected}; read it again and retry`, {
    current_version: current,
  });

/**
 * Preferences at system, group, user, project and task scope, and their fold (README,
 * Preferences). Who may read a scope is who may see its object; who may write it: admins everywhere, a
 * user their own scope, a project's updaters (owners) its scope, a task's creator its scope.
 * Every change is written to the preference audit log in the transaction that makes it.
 */
export class PreferenceService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly tasks: TaskLookup,
  ) {}

  async list(principal: Principal, ref: ScopeRef, ctx: RequestContext): Promise<{ scope: Scope; preferences: PreferenceRow[] }> {
    const scope = await this.resolve(principal, ref, 'read', ctx);
    return { scope, preferences: await listAtScope(this.db, scope.type, scope.id) };
  }

  async get(principal: Principal, ref: ScopeRef, key: string, ctx: RequestContext): Promise<PreferenceRow> {
    checkKey(key);
    const scope = await this.resolve(principal, ref, 'read', ctx);
    const row = await findPreference(this.db, scope.type, scope.id, key);
    if (!row) throw notFound('Preference');
    return row;
  }

  /** Creates (version 1) or replaces (version + 1); `expectedVersion` 0 means "only if it does not exist yet". */
  async set(principal: Principal, ref: ScopeRef, key: string, input: WriteOptions & { value: unknown; valueType?: ValueType }, ctx: RequestContext): Promise<{ preference: PreferenceRow; created: boolean }> {
    checkKey(key);
    const valueType = checkValue(key, input.value, input.valueType);
    agentMayWrite(principal, key);
    const scope = await this.resolve(principal, ref, 'write', ctx);
    // After the access check, so callers without it learn nothing from the answer.
    if ((await redactJson(input.value, { remember: false })).count > 0) throw badRequest('Preferences never hold credentials, and this value looks like one. Store secrets in a connector credential');
    return this.db.transaction(async (tx) => {
      const current = await lockPreference(tx, scope.type, scope.id, key);
      if (input.expectedVersion !== undefined && input.expectedVersion !== (current?.version ?? 0)) throw stale(current?.version ?? null, input.expectedVersion);
      const by = principal.userId;
      const preference = current ? await updatePreference(tx, current.id, { value: input.value, valueType, by }) : await insertPreference(tx, { scopeType: scope.type, scopeId: scope.id, key, value: input.value, valueType, by });
      // Another writer created the key between our read and our insert.
      if (!preference) throw conflict('The preference was created concurrently; read it and retry');
      await this.audit(tx, principal, current ? 'updated' : 'created', scope, key, current?.version ?? null, preference.version, input.reason, ctx);
      return { preference, created: !current };
    });
  }

  /** Lower scopes become effective again. */
  async delete(principal: Principal, ref: ScopeRef, key: string, opts: WriteOptions, ctx: RequestContext): Promise<void> {
    checkKey(key);
    agentMayWrite(principal, key);
    const scope = await this.resolve(principal, ref, 'write', ctx);
    await this.db.transaction(async (tx) => {
      const current = await lockPreference(tx, scope.type, scope.id, key);
      if (!current) throw notFound('Preference');
      if (opts.expectedVersion !== undefined && opts.expectedVersion !== current.version) throw stale(current.version, opts.expectedVersion);
      await deletePreference(tx, current.id);
      await this.audit(tx, principal, 'deleted', scope, key, current.version, null, opts.reason, ctx);
    });
  }

  /**
   * The preferences in force for the caller: in a task (its project's too), in a project, or with
   * neither, their own and their groups' over the system's. Precedence task > project > user >
   * group > system; entries that no longer fit their type are skipped and reported; known keys no
   * scope sets answer their default. The project-manager agent reads its settings here.
   */
  async effective(principal: Principal, where: { taskId?: string; projectId?: string }, ctx: RequestContext): Promise<Effective> {
    let taskId: string | null = null;
    let projectId: string | null = null;
    if (where.taskId !== undefined) {
      const task = await this.boundTask(principal, where.taskId);
      taskId = task.id;
      projectId = task.project_id;
    } else if (where.projectId !== undefined) {
      projectId = (await this.authz.requireProject(principal, where.projectId, 'project.read', ctx)).id;
    }
    const out: Effective = { effective: {}, sources: [], invalid: [] };
    const from = new Map<string, EffectiveSource>();
    for (const row of await foldCandidates(this.db, { userId: principal.userId, projectId, taskId })) {
      const reason = invalidReason(row.key, row.value, row.value_type);
      if (reason) {
        out.invalid.push({ key: row.key, scope_type: row.scope_type, scope_id: row.scope_id, version: row.version, reason });
        continue;
      }
      out.effective[row.key] = row.value;
      from.set(row.key, { key: row.key, scope_type: row.scope_type, scope_id: row.scope_id, version: row.version });
    }
    for (const [key, known] of Object.entries(KNOWN_KEYS)) {
      if (from.has(key)) continue;
      out.effective[key] = known.default;
      from.set(key, { key, scope_type: 'default', scope_id: null, version: 0 });
    }
    out.sources = [...from.values()].sort((a, b) => a.key.localeCompare(b.key));
    return out;
  }

  /** The preference audit log, newest first: admins only. */
  async auditLog(principal: Principal, f: AuditFilter, ctx: RequestContext): Promise<{ entries: PreferenceAuditRow[]; more: boolean }> {
    await this.authz.require(principal, ADMIN, ctx, { resourceType: 'preference_audit_log' });
    return listPreferenceAudit(this.db, f);
  }

  private async audit(tx: Queryable, principal: Principal, action: PreferenceAuditRow['action'], scope: Scope, key: string, oldVersion: number | null, newVersion: number | null, reason: string | undefined, ctx: RequestContext) {
    // A reason is free text, kept for as long as the log: a secret pasted into it is redacted.
    if (reason !== undefined) reason = (await redactAll([reason], { remember: false })).texts[0];
    await appendPreferenceAudit(tx, {
      action,
      scopeType: scope.type,
      scopeId: scope.id,
      key,
      oldVersion,
      newVersion,
      by: principal.userId,
      byHandle: principal.handle,
      via: principal.agent ? `agent:${principal.agent.role}` : principal.via,
      reason: reason ?? null,
      requestId: ctx.requestId,
    });
  }

  /** A task the caller may read; an agent bound to a task reaches that task only. */
  private async boundTask(principal: Principal, ref: string): Promise<TaskRow> {
    const task = await this.tasks.get(principal, ref);
    const bound = principal.agent?.taskId;
    if (bound !== undefined && task.id !== bound) throw forbidden('This agent works on another task');
    return task;
  }

  private isAdmin(principal: Principal): Promise<boolean> {
    return this.authz.can(principal, ADMIN);
  }

  /** The scope's object id after checking the caller may read or write it: 404 for what they cannot see, 403 for what they see but may not change. */
  private async resolve(principal: Principal, ref: ScopeRef, mode: 'read' | 'write', ctx: RequestContext): Promise<Scope> {
    const requireAdmin = (resourceType: string, resourceId?: string) => this.authz.require(principal, ADMIN, ctx, { resourceType, resourceId });
    if (ref.type === 'system') {
      if (ref.id !== undefined) throw badRequest('scope_id must not be given for system scope');
      if (mode === 'write') await requireAdmin('preference');
      return { type: 'system', id: null };
    }
    if (ref.type === 'user') {
      const id = ref.id ?? principal.userId;
      if (id === principal.userId) return { type: 'user', id };
      if (!UUID.test(id)) throw badRequest('scope_id of a user scope is a user id');
      await requireAdmin('user', id);
      if (!(await scopeSubjectExists(this.db, 'user', id))) throw notFound('User');
      return { type: 'user', id };
    }
    if (ref.id === undefined) throw badRequest(`scope_id is required for ${ref.type} scope`);
    if (ref.type === 'group') {
      if (!UUID.test(ref.id)) throw badRequest('scope_id of a group scope is a group id');
      const admin = await this.isAdmin(principal);
      const member = !admin && (await isActiveGroupMember(this.db, principal.userId, ref.id));
      if (!admin && !member) throw notFound('Group');
      if (mode === 'write' && !admin) await requireAdmin('group', ref.id);
      if (!(await scopeSubjectExists(this.db, 'group', ref.id))) throw notFound('Group');
      return { type: 'group', id: ref.id };
    }
    if (ref.type === 'project') {
      const project = await this.authz.requireProject(principal, ref.id, mode === 'read' ? 'project.read' : 'project.update', ctx);
      return { type: 'project', id: project.id };
    }
    const task = await this.boundTask(principal, ref.id);
    if (mode === 'write' && task.created_by !== principal.userId) await requireAdmin('task', task.id);
    return { type: 'task', id: task.id };
  }
}
