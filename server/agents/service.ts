import { randomUUID } from 'node:crypto';
import type { Db } from '../db';
import { Memo } from '../db/memo';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { badRequest, forbidden, notFound } from '../http/problem';
import type { AgentSubject } from '../policy/request';
import type { Authorizer } from '../rbac/service';
import { AGENT_ROLES, isAgentRole, type AgentRole } from './roles';
import * as store from './store';
import type { AgentTokenRow } from './store';
import type { AgentTokens } from './tokens';

/** Spec §2.3: short-lived. */
export const DEFAULT_AGENT_TOKEN_TTL_SECONDS = 15 * 60;
export const MAX_AGENT_TOKEN_TTL_SECONDS = 60 * 60;

/** How long a checked token row is trusted without asking the database (a revocation drops it at once). */
const ROW_MEMO_MS = 30_000;

/** An agent acting at /mcp: who it acts for, in which role, bound to what. */
export interface AgentCaller {
  /** The token's id, and the Agent entity's id in access rules and the access audit. */
  id: string;
  role: AgentRole;
  userId: string;
  handle: string;
  taskId?: string;
  sessionId?: string;
  projectId?: string;
  expiresAt: Date;
}

export interface MintInput {
  /** The user the agent acts for. */
  userId: string;
  role: string;
  taskId?: string;
  sessionId?: string;
  projectId?: string;
  ttlSeconds?: number;
}

export type MintedToken = AgentTokenRow & { token: string };

/** What the agent domain needs of tasks and sessions: whether the user may see one. */
export interface AgentScopes {
  findTask(userId: string, ref: string): Promise<{ id: string; project_id: string; session_id: string | null } | null>;
  /** The user's own session, or 404. */
  session(principal: Principal, id: string): Promise<{ id: string; project_id: string | null }>;
}

/** For the policy engine: the agent half of a subject (`PolicyService.decide({ agent: agentSubject(caller) })`). */
export function agentSubject(caller: AgentCaller): AgentSubject {
  return { id: caller.id, role: caller.role };
}

/** The principal an agent's tool calls run as: its user, marked as an agent (it manages no credentials). */
export function principalOf(caller: AgentCaller): Principal {
  const { id, role, taskId, sessionId, projectId } = caller;
  return { userId: caller.userId, handle: caller.handle, via: 'agent', agent: { id, role, ...(taskId ? { taskId } : {}), ...(sessionId ? { sessionId } : {}), ...(projectId ? { projectId } : {}) } };
}

const callerOf = (r: AgentTokenRow): AgentCaller => ({
  id: r.id,
  role: r.role as AgentRole,
  userId: r.user_id,
  handle: r.handle,
  ...(r.task_id ? { taskId: r.task_id } : {}),
  ...(r.session_id ? { sessionId: r.session_id } : {}),
  ...(r.project_id ? { projectId: r.project_id } : {}),
  expiresAt: r.expires_at,
});

/**
 * Agent-scoped tokens (docs/decisions/0007-tool-surface.md): an agent never holds its user's credential.
 * It acts with a short-lived token bound to the user, its role and what it works on; its rights
 * are what both the user and the role's allowlist allow (the policy engine decides both).
 */
export class AgentTokenService {
  /** Token rows checked by `verify`: dropped on any access change (revocation, a user disabled). */
  readonly rows = new Memo<AgentTokenRow | null>(ROW_MEMO_MS);

  constructor(
    private readonly db: Db,
    private readonly tokens: AgentTokens,
    private readonly authz: Authorizer,
    private readonly scopes: AgentScopes,
  ) {}

  /**
   * A token for an agent acting for `userId`. The token is in this answer only, never stored.
   * For the orchestrator's own agents; people mint through `create`. `now` is for tests.
   */
  async mint(input: MintInput, ctx?: RequestContext, now: Date = new Date()): Promise<MintedToken> {
    if (!isAgentRole(input.role)) throw badRequest(`role must be one of ${Object.keys(AGENT_ROLES).join(', ')}`);
    const ttl = input.ttlSeconds ?? DEFAULT_AGENT_TOKEN_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_AGENT_TOKEN_TTL_SECONDS) throw badRequest(`ttl_seconds must be a whole number from 1 to ${MAX_AGENT_TOKEN_TTL_SECONDS}`);
    const user = await store.findActingUser(this.db, input.userId);
    if (!user) throw notFound('User');
    const principal: Principal = { userId: user.id, handle: user.handle, via: 'local' };
    const scope = await this.scopeOf(principal, input, ctx);
    const id = randomUUID();
    // Whole seconds, as the token's `exp` says.
    const createdAt = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const expiresAt = new Date(createdAt.getTime() + ttl * 1000);
    const token = await this.tokens.sign({ id, userId: user.id, role: input.role, ...scope, expiresAt });
    const row = await this.db.transaction(async (tx) => {
      const created = await store.insertAgentToken(tx, { id, userId: user.id, role: input.role, taskId: scope.taskId ?? null, sessionId: scope.sessionId ?? null, projectId: scope.projectId ?? null, createdAt, expiresAt, createdBy: user.id });
      // Never the token: its id names it.
      await appendAudit(
        tx,
        { category: 'auth', action: 'agent_token_created', outcome: 'success', actorId: user.id, actorHandle: user.handle, resourceType: 'agent_token', resourceId: id, details: { role: input.role, task_id: scope.taskId ?? null, session_id: scope.sessionId ?? null, project_id: scope.projectId ?? null, expires_at: expiresAt.toISOString() } },
        ctx,
      );
      return created;
    });
    return { ...row, token };
  }

  /** A signed-in user or API key mints for themselves only; an agent mints nothing. */
  async create(principal: Principal, input: Omit<MintInput, 'userId'>, ctx: RequestContext): Promise<MintedToken> {
    if (principal.via === 'agent') throw forbidden('An agent cannot mint agent tokens');
    return this.mint({ ...input, userId: principal.userId }, ctx);
  }

  /**
   * The agent a token stands for, or null: a bad signature, the wrong kind of token, expired,
   * revoked, or its user disabled. The row is checked on every use (memoised until a change).
   */
  async verify(token: string): Promise<AgentCaller | null> {
    const claims = await this.tokens.verify(token);
    if (!claims) return null;
    const row = await this.rows.get(claims.id, () => store.findUsableAgentToken(this.db, claims.id, claims.userId));
    if (!row || row.revoked_at || row.expires_at.getTime() <= Date.now()) return null;
    return callerOf(row);
  }

  /** Whether an agent principal's token still acts, asked of the database: for what outlives a request. */
  async stillValid(principal: Principal): Promise<boolean> {
    return principal.via === 'agent' && principal.agent !== undefined && (await store.findUsableAgentToken(this.db, principal.agent.id, principal.userId)) !== null;
  }

  /** The caller's tokens, newest first; another user's (or everyone's) only for admins. */
  async list(principal: Principal, f: { userId?: string; all?: boolean; includeInactive?: boolean; limit: number }, ctx: RequestContext): Promise<AgentTokenRow[]> {
    const userId = f.all ? null : (f.userId ?? principal.userId);
    if (userId !== principal.userId) await this.authz.require(principal, 'agent_tokens.manage', ctx, { resourceType: 'agent_token' });
    return store.listAgentTokens(this.db, { userId, active: !f.includeInactive, limit: f.limit });
  }

  /** Revokes a token at once: the caller's own, or any for admins. 404 for one they may not see. */
  async revoke(principal: Principal, id: string, ctx: RequestContext): Promise<void> {
    // Asked before the transaction: on PGlite a query outside an open transaction waits for it.
    const row = await store.findAgentToken(this.db, id);
    if (!row || (row.user_id !== principal.userId && !(await this.authz.can(principal, 'agent_tokens.manage')))) throw notFound('Agent token');
    await this.db.transaction(async (tx) => {
      if (!(await store.revokeAgentToken(tx, id))) return;
      await appendAudit(tx, { category: 'auth', action: 'agent_token_revoked', outcome: 'success', actorId: principal.userId, actorHandle: principal.handle, resourceType: 'agent_token', resourceId: id, details: { user_id: row.user_id, role: row.role } }, ctx);
    });
    // The trigger's notification drops it too; here it is certain before the answer leaves.
    this.rows.delete(id);
  }

  /** What a token is bound to: each named thing must be the user's to see, and agree with the others. */
  private async scopeOf(principal: Principal, input: MintInput, ctx: RequestContext | undefined): Promise<{ taskId?: string; sessionId?: string; projectId?: string }> {
    let { sessionId, projectId } = input;
    let taskId: string | undefined;
    if (input.taskId !== undefined) {
      const task = await this.scopes.findTask(principal.userId, input.taskId);
      if (!task) throw notFound('Task');
      taskId = task.id;
      if (projectId !== undefined && projectId !== task.project_id) throw badRequest('project_id is not the task’s project');
      if (sessionId !== undefined && task.session_id !== null && sessionId !== task.session_id) throw badRequest('session_id is not the task’s session');
      projectId = task.project_id;
      sessionId ??= task.session_id ?? undefined;
    }
    if (sessionId !== undefined) {
      if (!UUID.test(sessionId)) throw notFound('Session');
      const session = await this.scopes.session(principal, sessionId);
      if (projectId !== undefined && session.project_id !== null && session.project_id !== projectId) throw badRequest('session_id belongs to another project');
      projectId ??= session.project_id ?? undefined;
    }
    if (projectId !== undefined && taskId === undefined) {
      projectId = (await this.authz.requireProject(principal, projectId, 'project.read', ctx ?? LOCAL_CONTEXT)).id;
    }
    return { ...(taskId ? { taskId } : {}), ...(sessionId ? { sessionId } : {}), ...(projectId ? { projectId } : {}) };
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const LOCAL_CONTEXT: RequestContext = { requestId: 'agent-token-mint', ip: 'local', userAgent: undefined };
