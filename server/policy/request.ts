/**
 * What callers ask the policy engine, and how a question becomes Cedar input: the entities
 * (with the hierarchy `in` needs), the request's ancestors for the scope index, and the parts of
 * a cache key. Callers hand in everything a decision may depend on (the subject's groups and
 * roles, the instance's owners and project), so a decision is a function of the request and the
 * rules alone and can be cached until the rules change.
 */
import type { EntityJson, CedarValueJson, EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';

export interface UserSubject {
  id: string;
  handle: string;
  /** Names of the user's roles (e.g. `admin`), as `Role::"<name>"`. */
  roles: readonly string[];
  /** Ids of every group the user is in (already flattened if groups nest). */
  groups: readonly string[];
}

/** An agent acting for `user`: it may do only what both its role and the user may do. */
export interface AgentSubject {
  id: string;
  role: string;
}

export interface PolicySubject {
  user: UserSubject;
  agent?: AgentSubject;
}

export interface ConnectorRef {
  id: string;
  /** The connector type (`imap`, `http`, …). */
  type: string;
  ownerUser?: string;
  ownerGroup?: string;
  project?: string;
}

export type PolicyResource =
  | { type: 'Model'; id: string }
  | { type: 'ConnectorType'; id: string }
  | { type: 'Connector'; connector: ConnectorRef }
  | { type: 'Operation'; name: string; connector: ConnectorRef }
  /** A tool of the MCP server, by its full name; `readOnly` when it changes nothing. */
  | { type: 'Tool'; name: string; readOnly: boolean };

/** A tool's namespace: its name up to the first dot (`connector` for `connector.op.invoke`). */
export const toolNamespace = (name: string): string => name.split('.')[0] ?? name;

export interface PolicyContext {
  task?: string;
  project?: string;
  /** Size of the request body in bytes. */
  requestSize?: number;
  /** Defaults to now. */
  time?: Date;
}

export interface PolicyRequest {
  subject: PolicySubject;
  action: string;
  resource: PolicyResource;
  context?: PolicyContext;
}

export interface Uid {
  type: string;
  id: string;
}

/** The one spelling of an entity used by the index and in cache keys: `Group::"lab"`. */
export const uidKey = (type: string, id: string): string => `${type}::${JSON.stringify(id)}`;

const ref = (type: string, id: string): { __entity: Uid } => ({ __entity: { type, id } });
const uid = (type: string, id: string): EntityUidJson => ({ type, id });

/** One Cedar evaluation: the user's own, or the agent's (an agent request makes two). */
export interface Pass {
  who: 'user' | 'agent';
  principal: Uid;
  /** The principal and everything it is `in`, as uid keys. */
  principalAncestors: ReadonlySet<string>;
  action: Uid;
  resource: Uid;
  resourceAncestors: ReadonlySet<string>;
  /** Entities Cedar needs to evaluate attribute access and `in`. */
  entities: EntityJson[];
  /** Everything but the context that the decision depends on, as a cache-key prefix. */
  identity: string;
}

interface ResourceParts {
  uid: Uid;
  ancestors: string[];
  entities: EntityJson[];
  identity: unknown[];
}

function connectorEntity(c: ConnectorRef): EntityJson {
  const attrs: Record<string, CedarValueJson> = {};
  if (c.ownerUser !== undefined) attrs.ownerUser = ref('User', c.ownerUser);
  if (c.ownerGroup !== undefined) attrs.ownerGroup = ref('Group', c.ownerGroup);
  const parents = [uid('ConnectorType', c.type)];
  if (c.project !== undefined) parents.push(uid('Project', c.project));
  return { uid: uid('Connector', c.id), attrs, parents };
}

function connectorAncestors(c: ConnectorRef): string[] {
  const keys = [uidKey('Connector', c.id), uidKey('ConnectorType', c.type)];
  if (c.project !== undefined) keys.push(uidKey('Project', c.project));
  return keys;
}

const connectorIdentity = (c: ConnectorRef) => [c.id, c.type, c.ownerUser ?? null, c.ownerGroup ?? null, c.project ?? null];

function resourceParts(r: PolicyResource): ResourceParts {
  switch (r.type) {
    case 'Model':
    case 'ConnectorType':
      // Leaf entities without attributes: Cedar needs no entity record for `==`, `in` or `is`.
      return { uid: { type: r.type, id: r.id }, ancestors: [uidKey(r.type, r.id)], entities: [], identity: [r.type, r.id] };
    case 'Connector':
      return { uid: { type: 'Connector', id: r.connector.id }, ancestors: connectorAncestors(r.connector), entities: [connectorEntity(r.connector)], identity: ['Connector', ...connectorIdentity(r.connector)] };
    case 'Operation': {
      // An operation's id is its instance and name: unique, and readable in a rule.
      const id = `${r.connector.id}/${r.name}`;
      const op: EntityJson = { uid: uid('Operation', id), attrs: { name: r.name, connector: ref('Connector', r.connector.id) }, parents: [uid('Connector', r.connector.id)] };
      return { uid: { type: 'Operation', id }, ancestors: [uidKey('Operation', id), ...connectorAncestors(r.connector)], entities: [op, connectorEntity(r.connector)], identity: ['Operation', r.name, ...connectorIdentity(r.connector)] };
    }
    case 'Tool':
      return {
        uid: { type: 'Tool', id: r.name },
        ancestors: [uidKey('Tool', r.name)],
        entities: [{ uid: uid('Tool', r.name), attrs: { namespace: toolNamespace(r.name), readOnly: r.readOnly }, parents: [] }],
        identity: ['Tool', r.name, r.readOnly],
      };
    default:
      throw new Error(`unknown resource type ${(r as { type?: unknown }).type}`);
  }
}

function userEntity(u: UserSubject): EntityJson {
  return {
    uid: uid('User', u.id),
    attrs: { handle: u.handle },
    parents: [...u.groups.map((g) => uid('Group', g)), ...u.roles.map((r) => uid('Role', r))],
  };
}

// Sorted so that the same user listed in another order hits the same cache entry.
const userIdentity = (u: UserSubject) => [u.id, u.handle, [...u.roles].sort(), [...u.groups].sort()];

/** The passes a request needs: the user's, then (for an agent) the agent's. */
export function passesOf(request: PolicyRequest): Pass[] {
  const { user, agent } = request.subject;
  const action = { type: 'Action', id: request.action };
  const res = resourceParts(request.resource);
  const tail = [request.action, ...res.identity];
  const userPass: Pass = {
    who: 'user',
    principal: { type: 'User', id: user.id },
    principalAncestors: new Set([uidKey('User', user.id), ...user.groups.map((g) => uidKey('Group', g)), ...user.roles.map((r) => uidKey('Role', r))]),
    action,
    resource: res.uid,
    resourceAncestors: new Set(res.ancestors),
    entities: [userEntity(user), ...res.entities],
    identity: JSON.stringify(['user', ...userIdentity(user), ...tail]),
  };
  if (!agent) return [userPass];
  const agentPass: Pass = {
    who: 'agent',
    principal: { type: 'Agent', id: agent.id },
    principalAncestors: new Set([uidKey('Agent', agent.id), uidKey('Role', agent.role)]),
    action,
    resource: res.uid,
    resourceAncestors: new Set(res.ancestors),
    // The user's entity too, so agent rules can read `principal.user` and its groups.
    entities: [{ uid: uid('Agent', agent.id), attrs: { role: agent.role, user: ref('User', user.id) }, parents: [uid('Role', agent.role)] }, userEntity(user), ...res.entities],
    identity: JSON.stringify(['agent', agent.id, agent.role, ...userIdentity(user), ...tail]),
  };
  return [userPass, agentPass];
}

/** Context attributes as Cedar values; `time` always present. */
export function contextValues(context: PolicyContext | undefined, now: () => Date): Record<string, CedarValueJson> {
  const c = context ?? {};
  const values: Record<string, CedarValueJson> = { time: { __extn: { fn: 'datetime', arg: (c.time ?? now()).toISOString() } } };
  if (c.task !== undefined) values.task = ref('Task', c.task);
  if (c.project !== undefined) values.project = ref('Project', c.project);
  if (c.requestSize !== undefined) values.requestSize = c.requestSize;
  return values;
}

/** The task entity, so `context.task in Project::"…"` holds for a task of that project. */
export function contextEntities(context: PolicyContext | undefined): EntityJson[] {
  if (context?.task === undefined) return [];
  return [{ uid: uid('Task', context.task), attrs: {}, parents: context.project !== undefined ? [uid('Project', context.project)] : [] }];
}
