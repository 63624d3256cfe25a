import { Value } from '@sinclair/typebox/value';
import type { Db } from '../db';
import { notFound } from '../http/problem';
import { redactJson } from '../redaction/redaction';
import type { Authorizer } from '../rbac/service';
import { ADMIN_ACTION, auditConnector, connectorProblem, refOf, visibleInstance, type ConnectorAct } from './access';
import type { ConnectorPolicy } from './policy';
import type { InstanceRow } from './store';
import { deleteSubscription, findSubscription, insertSubscription, listSubscriptions, type SubscriptionRow } from './subscriptions-store';
import type { OperationSpec } from './types/contract';
import { driverFor } from './types/index';

/**
 * Events out through connectors (docs/architecture.md): a user
 * subscribes an instance they may invoke to events; each event runs one operation of it as that
 * user, with a message filled into a template of the operation's parameters.
 */

export const EVENT_NAMES = ['task.completed', 'task.failed', 'node.lost'] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/**
 * Node events tell of the whole installation, so only those who manage nodes (the `admin` and
 * `operator` roles) may subscribe to them, and still must at each delivery.
 */
export const NODE_EVENT_ACTION = 'nodes.manage';

/** What an event's message says, by placeholder name: `{{subject}}` in a template is `fields.subject`. */
export interface EventFields {
  event: EventName;
  subject: string;
  text: string;
  task_id: string;
  task_name: string;
  task_status: string;
  failure_reason: string;
  node_id: string;
  node_name: string;
}

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;
const FIELD_NAMES = new Set<string>(['event', 'subject', 'text', 'task_id', 'task_name', 'task_status', 'failure_reason', 'node_id', 'node_name']);

/** A message as it could be: checks a template at subscribe time against the operation's schema. */
const SAMPLE: EventFields = {
  event: 'task.completed',
  subject: 'CyNode: task "example" completed',
  text: 'Task "example" completed.',
  task_id: '00000000-0000-4000-8000-000000000000',
  task_name: 'example',
  task_status: 'completed',
  failure_reason: '',
  node_id: '',
  node_name: '',
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function placeholdersIn(value: unknown, found: Set<string>): Set<string> {
  if (typeof value === 'string') for (const m of value.matchAll(PLACEHOLDER)) found.add(m[1]!);
  else if (Array.isArray(value)) for (const v of value) placeholdersIn(v, found);
  else if (isRecord(value)) for (const v of Object.values(value)) placeholdersIn(v, found);
  return found;
}

/**
 * The template with the message in it. Strings have their `{{name}}` placeholders replaced; the
 * message's subject and text go into the operation's `subject` and `text` parameters when the
 * template leaves them out (mail, chat posts), and an HTTP request that sends a body but names
 * none gets the event as JSON.
 */
export function renderParams(op: OperationSpec | undefined, template: Record<string, unknown>, fields: EventFields): Record<string, unknown> {
  const fill = (value: unknown): unknown => {
    if (typeof value === 'string') return value.replace(PLACEHOLDER, (whole, name: string) => (FIELD_NAMES.has(name) ? fields[name as keyof EventFields] : whole));
    if (Array.isArray(value)) return value.map(fill);
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v)]));
    return value;
  };
  const params = fill(template) as Record<string, unknown>;
  const properties = isRecord(op?.requestSchema.properties) ? op.requestSchema.properties : {};
  if ('subject' in properties && params.subject === undefined) params.subject = fields.subject;
  if ('text' in properties && params.text === undefined) params.text = fields.text;
  if ('body' in properties && 'method' in properties && params.body === undefined && params.method !== 'GET' && params.method !== 'HEAD') {
    params.body = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== ''));
  }
  return params;
}

/** The operation of the instance's type by name; undefined for a type whose operations come from its peer (MCP). */
export function declaredOperation(instance: InstanceRow, name: string): OperationSpec | undefined {
  const spec = driverFor(instance.type)?.spec;
  const op = spec?.operations.find((o) => o.name === name);
  if (op || spec?.operations.length === 0) return op;
  throw connectorProblem(400, 'validation_error', `A ${instance.type} connector has no operation "${name}"; GET /v1/connectors/catalog lists them`);
}

export interface SubscribeRequest {
  events: string[];
  operation: string;
  params: Record<string, unknown>;
}

/** Subscriptions of connector instances to events: create, list, delete. */
export class ConnectorSubscriptionService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly policy: ConnectorPolicy,
  ) {}

  /**
   * As for an invocation: 404 for an instance the caller may not see, 403 policy_denied when no
   * rule lets them run the operation; 400 for an unknown event or operation, a template that
   * cannot make valid parameters, or one holding a secret; 403 for node events without node rights.
   */
  async create(act: ConnectorAct, instanceId: string, input: SubscribeRequest): Promise<SubscriptionRow> {
    const instance = await visibleInstance(this.db, this.authz, act.by, instanceId);
    const events = [...new Set(input.events)];
    const unknown = events.filter((e) => !(EVENT_NAMES as readonly string[]).includes(e));
    if (unknown.length > 0) throw connectorProblem(400, 'validation_error', `Unknown event ${unknown.map((e) => `"${e}"`).join(', ')}; events are ${EVENT_NAMES.join(', ')}`);
    const op = declaredOperation(instance, input.operation);
    checkTemplate(op, input.params);
    const { count } = await redactJson(input.params, { remember: false });
    if (count > 0) throw connectorProblem(400, 'validation_error', 'The parameters look like they hold a secret; add it as a credential of the connector instead');
    if (events.includes('node.lost')) {
      await this.authz.require(act.by, NODE_EVENT_ACTION, act.ctx, { resourceType: 'connector_subscription', resourceId: instanceId });
    }
    const decision = await this.policy.decide(act.by, { action: 'connector.invoke', connector: refOf(instance), operation: input.operation }, act.ctx);
    if (!decision.allowed) throw connectorProblem(403, 'policy_denied', 'You are not allowed to run this operation, so you cannot subscribe it to events');
    return this.db.transaction(async (tx) => {
      const row = await insertSubscription(tx, { instanceId, ownerUserId: act.by.userId, events, operation: input.operation, params: input.params });
      await auditConnector(tx, act, 'connector_subscribed', instance, { subscription_id: row.id, events, operation: input.operation });
      return row;
    });
  }

  /** The caller's subscriptions of a visible instance (every one for admins). */
  async list(act: ConnectorAct, instanceId: string): Promise<SubscriptionRow[]> {
    await visibleInstance(this.db, this.authz, act.by, instanceId);
    const all = await this.authz.can(act.by, ADMIN_ACTION);
    return listSubscriptions(this.db, instanceId, all ? null : act.by.userId);
  }

  /** Its owner (or an admin) ends a subscription; another user's is 404 to everyone else. */
  async delete(act: ConnectorAct, instanceId: string, id: string): Promise<void> {
    const instance = await visibleInstance(this.db, this.authz, act.by, instanceId);
    const row = await findSubscription(this.db, instanceId, id);
    if (!row || (row.owner_user_id !== act.by.userId && !(await this.authz.can(act.by, ADMIN_ACTION)))) throw notFound('Subscription');
    await this.db.transaction(async (tx) => {
      await deleteSubscription(tx, id);
      await auditConnector(tx, act, 'connector_unsubscribed', instance, { subscription_id: id, owner_user_id: row.owner_user_id });
    });
  }
}

/** Placeholders must be known, and a sample message must make parameters the operation accepts. */
function checkTemplate(op: OperationSpec | undefined, template: Record<string, unknown>): void {
  const unknown = [...placeholdersIn(template, new Set())].filter((n) => !FIELD_NAMES.has(n));
  if (unknown.length > 0) throw connectorProblem(400, 'validation_error', `Unknown placeholder ${unknown.map((n) => `{{${n}}}`).join(', ')}; placeholders are ${[...FIELD_NAMES].join(', ')}`);
  if (!op) return;
  const params = renderParams(op, template, SAMPLE);
  if (!Value.Check(op.requestSchema, params)) {
    const first = Value.Errors(op.requestSchema, params).First();
    throw connectorProblem(400, 'validation_error', `The parameters would not be valid${first?.path ? ` at ${first.path}` : ''}: ${first?.message ?? 'they do not match the schema'}`);
  }
}
