/**
 * The vocabulary of access rules: the entity types a rule may name and the actions CyNode asks
 * about. Rules are Cedar policies; this schema is what they are validated against when an admin
 * writes one, so a misspelt action or attribute is refused at write time instead of silently
 * never matching (a forbid that never matches would be an open door).
 *
 * Every principal is a User or an Agent. An Agent acts for a user; the engine decides its
 * requests twice (as the user and as the agent) and allows only what both may do, so agent
 * rules name `principal is Agent` and say what an agent role may do, never more than its user.
 */

/** Principals every action applies to. */
export const PRINCIPAL_TYPES = ['User', 'Agent'] as const;

export type ResourceType = 'Model' | 'ConnectorType' | 'Connector' | 'Operation' | 'Tool';

/**
 * Every action CyNode asks the engine about, in one place, with the resource types it applies
 * to. The schema's actions are generated from this table and the engine refuses (denies) any
 * action not listed here, so adding an action is one line here plus the rules that allow it.
 */
export const ACTIONS = {
  'model.use': { resources: ['Model'], about: 'send a request to a model (chat completions, model listing)' },
  'connector.invoke': { resources: ['Operation'], about: 'run an operation of a connector instance' },
  'connector.install': { resources: ['Connector'], about: 'install a connector instance' },
  'connector.manage': { resources: ['Connector'], about: 'change, enable, disable, delete an instance or its credentials' },
  'tool.call': { resources: ['Tool'], about: 'list or call a tool of the MCP server at /mcp (Tool::"task.create")' },
} as const satisfies Record<string, { resources: readonly ResourceType[]; about: string }>;

export type PolicyAction = keyof typeof ACTIONS;

export function isPolicyAction(action: string): action is PolicyAction {
  return Object.prototype.hasOwnProperty.call(ACTIONS, action);
}

/**
 * The context every request carries. `time` is always present (the engine fills in now); the
 * others only when the operation has them, so rules test them with `context has …` first (the
 * validator insists). `time` is a Cedar datetime so rules can say `context.time.toTime() <
 * duration("18h")` for office hours.
 */
const CONTEXT_TYPE = `type RequestContext = {
  time: datetime,
  task?: Task,
  project?: Project,
  requestSize?: Long,
};`;

/**
 * Entity types. Parents give `in`: a user is in their groups and roles; an agent is in its role;
 * an instance is in its connector type and project; an operation is in its instance. Owners are
 * attributes, not parents, because "owned by" is not "part of" (a group owning an instance does
 * not make the instance a member of the group). A tool of the MCP server is named by its full
 * name (`Tool::"connector.op.invoke"`); `namespace` is the part before the first dot and
 * `readOnly` says the tool changes nothing, so a rule can allow every read at once.
 */
const ENTITY_TYPES = `entity Role;
entity Group;
entity Project;
entity Task in [Project];
entity User in [Group, Role] { handle: String };
entity Agent in [Role] { role: String, user: User };
entity Model;
entity ConnectorType;
entity Connector in [ConnectorType, Project] {
  ownerUser?: User,
  ownerGroup?: Group,
};
entity Operation in [Connector] { name: String, connector: Connector };
entity Tool { namespace: String, readOnly: Bool };`;

function actionDeclarations(): string {
  return Object.entries(ACTIONS)
    .map(([name, a]) => `action "${name}" appliesTo {\n  principal: [${PRINCIPAL_TYPES.join(', ')}],\n  resource: [${a.resources.join(', ')}],\n  context: RequestContext,\n};`)
    .join('\n');
}

/** The Cedar schema (human-readable form) rules are validated against. */
export const POLICY_SCHEMA = `${CONTEXT_TYPE}\n${ENTITY_TYPES}\n${actionDeclarations()}\n`;
