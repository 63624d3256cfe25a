// Payloads of the User API Gateway as the console uses them, derived from schema.d.ts (generated
// from GET /v1/openapi.json by `npm run api:types`): the console never imports server code, and
// never keeps its own copy of the contract. Only what the document cannot describe (problem
// documents, streamed frames) is declared by hand.
import type { paths } from './schema';

export type { paths } from './schema';

type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never;
/** The 200 answer of GET `P`. */
type Get<P extends keyof paths> = paths[P] extends { get: { responses: { 200: infer R } } } ? JsonOf<R> : never;
/** The 200 answer of POST `P`. */
type Post<P extends keyof paths> = paths[P] extends { post: { responses: { 200: infer R } } } ? JsonOf<R> : never;
type Item<T> = T extends ReadonlyArray<infer I> ? I : never;

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
}

export type TokenPair = Post<'/v1/auth/login'>;
export type Me = Get<'/v1/users/me'>;
export type User = Item<Get<'/v1/users'>['users']>;
export type Group = Item<Get<'/v1/groups'>['groups']>;
export type GroupMember = Item<Get<'/v1/groups/{id}/members'>['members']>;
export type ApiKey = Item<Get<'/v1/api-keys'>['api_keys']>;
export type Project = Item<Get<'/v1/projects'>['projects']>;
/** The gateway's document leaves audit events open (any fields): their shape is declared here. */
export interface AuditEvent {
  event_id: string;
  seq: number;
  ts: string;
  category: 'auth' | 'admin' | 'access';
  action: string;
  outcome: string;
  actor_id: string | null;
  actor_handle: string | null;
  resource_type: string | null;
  resource_id: string | null;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  reason: string | null;
  details: Record<string, unknown> | null;
}
export type Model = Item<Get<'/v1/models'>['data']>;
export type Thread = Item<Get<'/v1/chat/threads'>['threads']>;
export type ChatMessage = Item<Get<'/v1/chat/threads/{id}/messages'>['messages']>;

/** One `data:` chunk of a streamed completion (OpenAI's chat.completion.chunk). */
export interface CompletionChunk {
  id?: string;
  choices?: Array<{ index: number; delta?: { role?: string; content?: string }; finish_reason?: string | null }>;
  error?: { message: string; code?: string };
}

export type Task = Get<'/v1/tasks/{id}'>;
export type TaskStatus = Task['status'];
export type InputMode = Task['input_mode'];
export type TaskResult = Get<'/v1/tasks/{id}/result'>;
export type TaskJob = Item<TaskResult['jobs']>;

/** Every task status in the order the task list offers them; the compiler checks it against the schema both ways. */
export const TASK_STATUSES = ['queued', 'running', 'completed', 'failed', 'canceled', 'superseded'] as const satisfies readonly TaskStatus[];
type Missing = Exclude<TaskStatus, (typeof TASK_STATUSES)[number]>;
const _everyStatus: [Missing] extends [never] ? true : Missing = true;
void _everyStatus;

/** One line of a task's live log stream. */
export interface TaskLogLine {
  run_id: string;
  seq: number;
  stream: 'stdout' | 'stderr';
  message: string;
  ts: string;
}

export type Run = Get<'/v1/runs/{id}'>;
export type RunStatus = Run['status'];
export type RunEvent = Item<Get<'/v1/runs/{id}/events'>['items']>;
export type Session = Get<'/v1/sessions/{id}'>;

export type NodeInfo = Omit<Get<'/v1/nodes/{id}'>, 'capability_summary'> & { capability_summary: CapabilitySummary | null };
/** A node's own report, open in the gateway's document: the fields the console shows. */
export interface CapabilitySummary {
  os?: string;
  arch?: string;
  cpu_cores?: number;
  ram_mb?: number;
  gpu_present?: boolean;
  container_runtime?: string | null;
  sandbox_supported?: boolean;
  inference_running?: boolean;
  models?: string[];
}
export type JoinInfo = Get<'/v1/nodes/join'>;

/** One frame of a model pull's progress stream. */
export interface PullProgress {
  status: string;
  completed?: number;
  total?: number;
  percent?: number;
}

/** "Share on LAN": `PUT /v1/system/lan-sharing {enabled}` (admins) answers the same shape. */
export type SystemInfo = Get<'/v1/system/info'>;
export type LanSharing = SystemInfo['lan_sharing'];

/** The desktop shell's bridge (absent in LAN browsers): its contract lives with the preload. */
export type { CynodeDesktopApi, DesktopSession } from '../../../preload/api';
import type { CynodeDesktopApi } from '../../../preload/api';

declare global {
  interface Window {
    cynode?: CynodeDesktopApi;
  }
}

export type ConnectorType = Item<Get<'/v1/connectors/catalog'>['types']>;
export type ConnectorOperation = Item<ConnectorType['operations']>;
export type Connector = Get<'/v1/connectors/{id}'>;
export type ConnectorStatus = Connector['status'];
export type EgressAllow = Get<'/v1/connectors/egress-allow'>;
export type ConnectorCredential = Item<Get<'/v1/connectors/{id}/credentials'>['credentials']>;
export type CredentialKind = ConnectorCredential['type'];
export type ConnectorHistoryRow = Item<Get<'/v1/connectors/{id}/operations'>['operations']>;
export type OperationOutcome = Post<'/v1/connectors/{id}/operations/{op}'>;

export type PolicyRule = Get<'/v1/policy/rules/{id}'>;
export type RuleCheck = Post<'/v1/policy/rules/validate'>;
export type Explanation = Post<'/v1/policy/explain'>;
type ExplainBody = paths['/v1/policy/explain']['post']['requestBody']['content']['application/json'];
export type PolicyActionName = ExplainBody['action'];
export type ExplainResource = ExplainBody['resource'];
export type AccessDecision = Item<Get<'/v1/audit/access'>['decisions']>;
