import { randomUUID } from 'node:crypto';
import type { Db } from '../db';
import { GroupCommit } from '../db/group-commit';
import { Memo } from '../db/memo';
import { appendAudit } from '../audit/record';
import type { RequestContext } from '../http/principal';
import { badRequest, conflict, notFound } from '../http/problem';
import { decodeCursor, encodeCursor } from '../http/schemas';
import type { Authorizer } from '../rbac/service';
import type { AdminAct } from '../users/service';
import { PolicyEngine, type PolicyDecision, type PolicyExplanation } from './engine';
import type { AgentSubject, PolicyContext, PolicyResource, UserSubject } from './request';
import type { PolicyAction } from './schema';
import {
  allRules,
  appendAccessRecords,
  deleteRule,
  findRule,
  insertRule,
  listAccess,
  listRules,
  updateRule,
  userSubject,
  type AccessEntry,
  type AccessFilter,
  type AccessRecord,
  type RuleChange,
  type RuleRow,
} from './store';

/** One question for the engine: may this user (or an agent acting for them) do this? */
export interface AccessQuestion {
  /** The user asking, or for whom the agent asks. */
  userId: string;
  agent?: AgentSubject;
  action: PolicyAction;
  resource: PolicyResource;
  /** Task, project, request size; time defaults to now. */
  context?: PolicyContext;
}

/** A decision as answered to the domain that asked: `auditId` is its row in the access audit (null when it could not be written, and then it is a deny). */
export type AccessDecision = PolicyDecision & { auditId: string | null };

export interface PolicyOptions {
  /** Told when rules cannot be loaded or a decision cannot be audited (each such decision denies). */
  onError?: (err: unknown, what: string) => void;
  /** Milliseconds between attempts to load the rules after a failure. */
  retryMs?: number;
}

/** How the access audit names a resource. */
function resourceId(r: PolicyResource): string {
  switch (r.type) {
    case 'Model':
    case 'ConnectorType':
      return r.id;
    case 'Connector':
      return r.connector.id;
    case 'Operation':
      return `${r.connector.id}/${r.name}`;
    case 'Tool':
      return r.name;
  }
}

const projectOf = (r: PolicyResource): string | undefined => (r.type === 'Connector' || r.type === 'Operation' ? r.connector.project : undefined);

const deny = (reason: string): PolicyDecision => ({ decision: 'deny', rules: [], reason });

const cursorOf = <K extends string, V>(key: K, is: (v: unknown) => v is V) => (v: unknown): v is Record<K, V> => typeof v === 'object' && v !== null && is((v as Record<string, unknown>)[key]);
const isString = (v: unknown): v is string => typeof v === 'string';
const isInteger = (v: unknown): v is number => Number.isInteger(v);

/**
 * The one place every domain asks whether something is allowed: rules from the database in a
 * Cedar engine (server/policy/engine.ts), every decision written to the access audit before it
 * is answered, and anything going wrong (rules that cannot be loaded, a subject that cannot be
 * read, an audit row that cannot be written) answered with a deny. Admins manage the rules here.
 */
export class PolicyService {
  private readonly engine = PolicyEngine.create();
  /** Who each user is for a decision (handle, groups, system roles): dropped on any access change. */
  readonly subjects = new Memo<UserSubject | null>(30_000);
  /** Set while the rules in the database could not be loaded: every decision denies, saying so. */
  private failure: string | undefined = 'the access rules are not loaded yet';
  private loads: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly records = new GroupCommit<AccessRecord, void>(async (records) => {
    await appendAccessRecords(this.db, records);
    return records.map(() => undefined);
  });

  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly options: PolicyOptions = {},
  ) {}

  /**
   * Loads the rules and follows changes from every gateway: a rule change reloads them; a change
   * to users, groups, memberships or role bindings forgets who everyone is and the decisions
   * made about them. Answers the function that stops following.
   */
  async start(): Promise<() => Promise<void>> {
    const unlisten = await this.db.listen('access_changed', (table) => {
      if (table === 'policy_rules') void this.reload().catch(() => {});
      else this.accessChanged();
    });
    await this.reload().catch(() => {});
    return async () => {
      this.stopped = true;
      clearTimeout(this.retry);
      await unlisten();
    };
  }

  /** Forgets subjects and cached decisions: memberships, roles or users changed. */
  accessChanged(): void {
    this.subjects.clear();
    this.engine.invalidate();
  }

  /**
   * Reads every rule again. Loads run one at a time; changes announced while one runs share the
   * next. A load that fails leaves every decision denying until one succeeds (retried).
   */
  reload(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.loads.then(async () => {
      this.queued = null;
      await this.load();
    });
    this.queued = next;
    this.loads = next.catch(() => {});
    return next;
  }

  private async load(): Promise<void> {
    try {
      const rows = await allRules(this.db);
      const check = this.engine.setRules(rows.map((r) => ({ id: r.id, text: r.text, enabled: r.enabled })));
      this.failure = undefined;
      if (!check.ok) this.options.onError?.(new Error(check.problems.join('; ')), 'some access rules have problems');
    } catch (err) {
      this.failure = `the access rules could not be loaded, so everything is denied: ${(err as Error).message}`;
      this.options.onError?.(err, 'loading the access rules failed; retrying');
      if (!this.stopped) {
        clearTimeout(this.retry);
        this.retry = setTimeout(() => void this.reload().catch(() => {}), this.options.retryMs ?? 1000);
        this.retry.unref();
      }
      throw err;
    }
  }

  /**
   * Decides, writes the decision to the access audit, then answers it. Fails closed: an error
   * anywhere (the subject, the engine, the audit write) is a deny. `ctx` names the HTTP request
   * in the audit row when there is one.
   */
  async decide(q: AccessQuestion, ctx?: RequestContext): Promise<AccessDecision> {
    let subject: UserSubject | null = null;
    let decision: PolicyDecision;
    try {
      subject = await this.subjects.get(q.userId, () => userSubject(this.db, q.userId));
      if (this.failure) decision = deny(this.failure);
      else if (!subject) decision = deny('the user does not exist or is disabled');
      else decision = this.engine.authorize({ subject: { user: subject, ...(q.agent ? { agent: q.agent } : {}) }, action: q.action, resource: q.resource, context: q.context });
    } catch (err) {
      decision = deny(`the decision failed: ${(err as Error).message}`);
    }
    const record = this.record(q, subject, decision, ctx);
    try {
      await this.records.submit(record);
    } catch (err) {
      this.options.onError?.(err, 'an access decision could not be audited, so it is denied');
      return { ...deny('the decision could not be audited'), auditId: null };
    }
    return { ...decision, auditId: record.id };
  }

  async allows(q: AccessQuestion, ctx?: RequestContext): Promise<boolean> {
    return (await this.decide(q, ctx)).decision === 'allow';
  }

  /** The items the user may `action`, each decided (and audited) on its own. */
  async permitted<T>(userId: string, action: PolicyAction, items: readonly T[], resourceOf: (item: T) => PolicyResource, ctx?: RequestContext): Promise<T[]> {
    const allowed = await Promise.all(items.map((item) => this.allows({ userId, action, resource: resourceOf(item) }, ctx)));
    return items.filter((_, i) => allowed[i]);
  }

  private record(q: AccessQuestion, subject: UserSubject | null, d: PolicyDecision, ctx: RequestContext | undefined): AccessRecord {
    return {
      id: randomUUID(),
      request_id: ctx?.requestId ?? null,
      subject_user_id: q.userId,
      subject_handle: subject?.handle ?? null,
      subject_agent_id: q.agent?.id ?? null,
      subject_agent_role: q.agent?.role ?? null,
      subject_groups: subject?.groups ?? [],
      subject_roles: subject?.roles ?? [],
      action: q.action,
      resource_type: q.resource.type,
      resource_id: resourceId(q.resource),
      decision: d.decision,
      rules: d.rules,
      reason: d.reason ?? null,
      task_id: q.context?.task ?? null,
      project_id: q.context?.project ?? projectOf(q.resource) ?? null,
    };
  }

  /* Admin: rules, explain and the access audit (every method needs `policy.manage`). */

  /** Ordered by id; the cursor is checked after the caller's right to list. */
  async listRules(act: AdminAct, f: { enabled?: boolean; cursor?: string; limit: number }): Promise<{ rules: RuleRow[]; nextCursor?: string }> {
    await this.authorize(act);
    const after = decodeCursor(f.cursor, cursorOf('id', isString));
    const rows = await listRules(this.db, { afterId: after?.id, enabled: f.enabled, limit: f.limit + 1 });
    const rules = rows.slice(0, f.limit);
    const last = rules.at(-1);
    return { rules, ...(rows.length > f.limit && last ? { nextCursor: encodeCursor({ id: last.id }) } : {}) };
  }

  async getRule(act: AdminAct, id: string): Promise<RuleRow> {
    await this.authorize(act, id);
    const rule = await findRule(this.db, id);
    if (!rule) throw notFound('Rule');
    return rule;
  }

  /** Checks a rule's text as create would, storing nothing: the console validates as the admin types. */
  async validateRule(act: AdminAct, text: string): Promise<{ valid: boolean; problems: string[] }> {
    await this.authorize(act);
    const v = this.engine.validate(text);
    return v.ok ? { valid: true, problems: [] } : { valid: false, problems: [...v.problems] };
  }

  async createRule(act: AdminAct, input: { name: string; description?: string; text: string; enabled?: boolean }): Promise<RuleRow> {
    await this.authorize(act);
    this.check(input.text);
    const rule = await this.db.transaction(async (tx) => {
      const row = await insertRule(tx, { name: input.name, description: input.description ?? '', text: input.text, enabled: input.enabled ?? true, by: act.by.userId });
      await this.audit(tx, act, 'policy_rule_created', row.id, { name: row.name, text: row.text, enabled: row.enabled, version: row.version });
      return row;
    });
    await this.reloadAfterWrite();
    return rule;
  }

  /**
   * Changes what is given. With `version`, only that version is changed (409 otherwise: someone
   * else changed it since it was read); without, the last write wins.
   */
  async updateRule(act: AdminAct, id: string, change: RuleChange & { version?: number }): Promise<RuleRow> {
    await this.authorize(act, id);
    if (change.text !== undefined) this.check(change.text);
    const { version, ...fields } = change;
    const rule = await this.db.transaction(async (tx) => {
      const before = await findRule(tx, id, true);
      if (!before) throw notFound('Rule');
      if (version !== undefined && version !== before.version) throw conflict(`The rule is at version ${before.version}, not ${version}: it changed since you read it; read it again and retry`);
      const row = await updateRule(tx, id, fields, act.by.userId);
      const details: Record<string, unknown> = { name: row.name, enabled: row.enabled, version: row.version };
      if (fields.text !== undefined && fields.text !== before.text) Object.assign(details, { text: row.text, previous_text: before.text });
      await this.audit(tx, act, 'policy_rule_updated', id, details);
      return row;
    });
    await this.reloadAfterWrite();
    return rule;
  }

  /** Default rules too: deleting `default-model-use` leaves model use denied unless another rule allows it. */
  async deleteRule(act: AdminAct, id: string): Promise<void> {
    await this.authorize(act, id);
    await this.db.transaction(async (tx) => {
      const before = await findRule(tx, id, true);
      if (!before) throw notFound('Rule');
      await deleteRule(tx, id);
      // The text, so the trail can put a deleted rule back.
      await this.audit(tx, act, 'policy_rule_deleted', id, { name: before.name, text: before.text, enabled: before.enabled, is_default: before.is_default, version: before.version });
    });
    await this.reloadAfterWrite();
  }

  /**
   * What the engine would decide for a user (and agent) asking this: the decision, the rules
   * that made it and the rules considered. Nothing is done, so nothing goes to the access audit.
   */
  async explain(act: AdminAct, q: AccessQuestion): Promise<PolicyExplanation & { subject: UserSubject }> {
    await this.authorize(act);
    const subject = await userSubject(this.db, q.userId);
    if (!subject) throw notFound('User');
    if (this.failure) return { decision: 'deny', rules: [], reason: this.failure, considered: [], passes: [], subject };
    const explanation = this.engine.explain({ subject: { user: subject, ...(q.agent ? { agent: q.agent } : {}) }, action: q.action, resource: q.resource, context: q.context });
    return { ...explanation, subject };
  }

  /** Newest first; the cursor is checked after the caller's right to read. */
  async accessLog(act: AdminAct, f: Omit<AccessFilter, 'beforeSeq'> & { cursor?: string }): Promise<{ entries: AccessEntry[]; nextCursor?: string }> {
    await this.authz.require(act.by, 'policy.audit.read', act.ctx, { resourceType: 'access_audit' });
    const { cursor, ...filter } = f;
    const before = decodeCursor(cursor, cursorOf('seq', isInteger));
    const { entries, more } = await listAccess(this.db, { ...filter, beforeSeq: before?.seq });
    const last = entries.at(-1);
    return { entries, ...(more && last ? { nextCursor: encodeCursor({ seq: last.seq }) } : {}) };
  }

  /** Refuses a rule that does not parse, is not exactly one policy, or names what the schema does not know. */
  private check(text: string): void {
    const v = this.engine.validate(text);
    if (!v.ok) throw badRequest(`The rule is not valid: ${v.problems.join('; ')}`, { problems: v.problems });
  }

  /**
   * The writer's next request sees the change: the notification reloads every gateway, but on
   * PostgreSQL it may arrive after that request. A failed reload has left decisions denying.
   */
  private async reloadAfterWrite(): Promise<void> {
    await this.reload().catch(() => {});
  }

  private authorize(act: AdminAct, id?: string): Promise<void> {
    return this.authz.require(act.by, 'policy.manage', act.ctx, { resourceType: 'policy_rule', ...(id ? { resourceId: id } : {}) });
  }

  private audit(tx: Parameters<typeof appendAudit>[0], act: AdminAct, action: string, id: string, details: Record<string, unknown>): Promise<void> {
    return appendAudit(tx, { category: 'admin', action, outcome: 'success', actorId: act.by.userId, actorHandle: act.by.handle, resourceType: 'policy_rule', resourceId: id, scopeType: 'system', details }, act.ctx);
  }
}
