import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import type { PolicyEngine } from '../policy/engine';
import type { ConnectorRef } from '../policy/request';

/** What the connectors domain asks the policy engine. */
export interface ConnectorDecisionRequest {
  action: 'connector.invoke' | 'connector.install' | 'connector.manage';
  connector: ConnectorRef;
  /** For `connector.invoke`: the operation's name. */
  operation?: string;
  task?: string;
}

export interface ConnectorDecision {
  allowed: boolean;
  /** The rules that decided, or why none did. */
  reasons: string[];
}

/** The policy decision point as the connectors domain sees it; every decision is audited by it. */
export interface ConnectorPolicy {
  decide(by: Principal, request: ConnectorDecisionRequest, ctx: RequestContext): Promise<ConnectorDecision>;
}

/**
 * Decides with a policy engine holding the rules it was given, reading the caller's roles and
 * groups from the database, and writes every decision to the access audit.
 */
export class EngineConnectorPolicy implements ConnectorPolicy {
  constructor(
    private readonly db: Db,
    private readonly engine: PolicyEngine,
  ) {}

  async decide(by: Principal, request: ConnectorDecisionRequest, ctx: RequestContext): Promise<ConnectorDecision> {
    const subject = await this.subjectOf(by);
    const decision = this.engine.authorize({
      subject: { user: subject },
      action: request.action,
      resource: request.operation !== undefined ? { type: 'Operation', name: request.operation, connector: request.connector } : { type: 'Connector', connector: request.connector },
      context: { ...(request.task ? { task: request.task } : {}), ...(request.connector.project ? { project: request.connector.project } : {}) },
    });
    const allowed = decision.decision === 'allow';
    const reasons = decision.rules.length > 0 ? decision.rules : [decision.reason ?? 'no rule allows this (default deny)'];
    await appendAudit(
      this.db,
      {
        category: 'access',
        action: request.action,
        outcome: allowed ? 'allow' : 'deny',
        actorId: by.userId,
        actorHandle: by.handle,
        resourceType: request.operation !== undefined ? 'connector_operation' : 'connector',
        resourceId: request.operation !== undefined ? `${request.connector.id}/${request.operation}` : request.connector.id,
        scopeType: request.connector.project ? 'project' : 'system',
        scopeId: request.connector.project ?? null,
        reason: reasons.join(', '),
        details: { connector_type: request.connector.type, rules: decision.rules },
      },
      ctx,
    );
    return { allowed, reasons };
  }

  private async subjectOf(by: Principal): Promise<{ id: string; handle: string; roles: string[]; groups: string[] }> {
    const groups = await this.db.query<{ group_id: string }>(
      `SELECT gm.group_id FROM group_memberships gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = $1 AND gm.is_active AND g.is_active`,
      [by.userId],
    );
    const groupIds = groups.map((g) => g.group_id);
    const roles = await this.db.query<{ name: string }>(
      `SELECT DISTINCT r.name FROM role_bindings rb JOIN roles r ON r.id = rb.role_id
       WHERE rb.is_active AND rb.scope_type = 'system'
         AND ((rb.subject_type = 'user' AND rb.subject_id = $1) OR (rb.subject_type = 'group' AND rb.subject_id = ANY($2::uuid[])))`,
      [by.userId, groupIds],
    );
    return { id: by.userId, handle: by.handle, roles: roles.map((r) => r.name), groups: groupIds };
  }
}
