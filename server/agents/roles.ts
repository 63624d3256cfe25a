/**
 * The agent roles (docs/decisions/0007-tool-surface.md): the one list of roles an
 * agent token may carry. What each role may call is an access rule (server/policy/default-rules.ts,
 * `principal is Agent in Role::"<role>"`), so admins can see and change it like any other rule.
 */
export const AGENT_ROLES = {
  project_manager: 'plans and runs a project for its user: every tool its user may call',
  project_analyst: 'verifies and reports: only the tools that change nothing',
  worker: 'the agent in a task’s sandbox: reads its own task, its result and its runs',
} as const;

export type AgentRole = keyof typeof AGENT_ROLES;

export function isAgentRole(role: string): role is AgentRole {
  return Object.prototype.hasOwnProperty.call(AGENT_ROLES, role);
}
