import type { Principal, RequestContext } from '../http/principal';
import type { ConnectorRef } from '../policy/request';
import type { PolicyService } from '../policy/service';

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
  /** The decision's row in the access audit. */
  auditId: string | null;
}

/** The policy decision point as the connectors domain sees it; every decision is audited by it. */
export interface ConnectorPolicy {
  decide(by: Principal, request: ConnectorDecisionRequest, ctx: RequestContext): Promise<ConnectorDecision>;
}

/** The policy service (rules in the database, access audit of every decision) in the connectors' terms. */
export function connectorPolicyOf(policy: PolicyService): ConnectorPolicy {
  return {
    async decide(by, request, ctx) {
      const decision = await policy.decide(
        {
          userId: by.userId,
          // An agent's call is decided for its role as well as for its user (docs/decisions/0007-tool-surface.md).
          ...(by.agent ? { agent: { id: by.agent.id, role: by.agent.role } } : {}),
          action: request.action,
          resource: request.operation !== undefined ? { type: 'Operation', name: request.operation, connector: request.connector } : { type: 'Connector', connector: request.connector },
          context: { ...(request.task ? { task: request.task } : {}), ...(request.connector.project ? { project: request.connector.project } : {}) },
        },
        ctx,
      );
      return { allowed: decision.decision === 'allow', reasons: decision.rules.length > 0 ? decision.rules : [decision.reason ?? 'no rule allows this'], auditId: decision.auditId };
    },
  };
}
