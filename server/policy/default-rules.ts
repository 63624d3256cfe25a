/**
 * The rules a fresh install starts with. They keep what CyNode allowed before it had a policy
 * engine, and they are ordinary rules: visible, editable and removable by admins (restricting a
 * model to a group means replacing `default-model-use`, or adding a forbid next to it).
 */
import type { PolicyRule } from './engine';

export const DEFAULT_RULES: readonly PolicyRule[] = [
  {
    id: 'default-model-use',
    // Every signed-in principal: agents use models for their users, and a user's own model
    // access is checked in the same decision (an agent never gets more than its user).
    text: 'permit (principal, action == Action::"model.use", resource is Model);',
    enabled: true,
  },
  {
    id: 'default-connector-owner',
    text: `permit (principal is User, action == Action::"connector.invoke", resource is Operation)
when { resource.connector has ownerUser && resource.connector.ownerUser == principal };`,
    enabled: true,
  },
  {
    id: 'default-connector-owner-group',
    text: `permit (principal is User, action == Action::"connector.invoke", resource is Operation)
when { resource.connector has ownerGroup && principal in resource.connector.ownerGroup };`,
    enabled: true,
  },
  {
    id: 'default-connector-install',
    // Installing for a group is left to admins until a rule says otherwise.
    text: `permit (principal is User, action == Action::"connector.install", resource is Connector)
when { resource has ownerUser && resource.ownerUser == principal };`,
    enabled: true,
  },
  {
    id: 'default-admin-connectors',
    // `is User`: an agent whose role happens to be named admin is not an admin.
    text: `permit (principal is User in Role::"admin", action in [Action::"connector.manage", Action::"connector.install"], resource is Connector);`,
    enabled: true,
  },
  {
    id: 'default-tool-call',
    // Every tool of /mcp for users: each tool calls the same services as the REST API, whose
    // own checks still apply. Admins restrict a tool with a forbid next to this rule; agents get
    // tools from rules naming `principal is Agent` (their role's allowlist).
    text: 'permit (principal is User, action == Action::"tool.call", resource is Tool);',
    enabled: true,
  },
  /*
   * The agent roles' allowlists (server/agents/roles.ts names the roles). An agent's request is
   * also decided as its user, so each of these only narrows what the user may do.
   */
  {
    id: 'default-agent-project-manager',
    text: 'permit (principal is Agent in Role::"project_manager", action == Action::"tool.call", resource is Tool);',
    enabled: true,
  },
  {
    id: 'default-agent-project-analyst',
    text: `permit (principal is Agent in Role::"project_analyst", action == Action::"tool.call", resource is Tool)
when { resource.readOnly };`,
    enabled: true,
  },
  {
    id: 'default-agent-worker',
    // Which task is its own is checked at /mcp against the token's task (the scoped-id check).
    text: `permit (principal is Agent in Role::"worker", action == Action::"tool.call", resource is Tool)
when { [Tool::"task.get", Tool::"task.result", Tool::"run.get", Tool::"run.events", Tool::"run.logs"].contains(resource) };`,
    enabled: true,
  },
  {
    id: 'default-agent-project-manager-connectors',
    // The connector call itself is decided for the agent too: its user's owner rules above still
    // decide whose instances, this only says which agent role may reach connectors at all.
    text: 'permit (principal is Agent in Role::"project_manager", action == Action::"connector.invoke", resource is Operation);',
    enabled: true,
  },
];
