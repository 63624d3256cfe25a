// Payloads of the User API Gateway as the console uses them (GET /v1/openapi.json is the
// contract). Declared here on purpose: the console never imports server code.

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
}

export interface Me {
  id: string;
  handle: string;
  email: string | null;
  display_name: string | null;
  is_active: boolean;
  roles: string[];
  group_ids: string[];
  default_project_id: string | null;
  auth_method: 'session' | 'api_key';
}

export interface User {
  id: string;
  handle: string;
  email: string | null;
  display_name: string | null;
  is_active: boolean;
  is_system: boolean;
  default_project_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface Group {
  id: string;
  slug: string;
  display_name: string;
  is_active: boolean;
  member_count: number;
  created_at: string;
  updated_at: string;
}

export interface GroupMember {
  group_id: string;
  user_id: string;
  handle: string;
  is_active: boolean;
  created_at: string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface Project {
  id: string;
  project_id: string;
  slug: string;
  display_name: string;
  description?: string | null;
  is_active: boolean;
  is_default: boolean;
  owner_user_id?: string;
}

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

export interface Model {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export interface Thread {
  id: string;
  thread_id: string;
  project_id: string | null;
  title: string | null;
  created_at: string;
  updated_at: string;
}

export interface ChatMessage {
  id: string;
  thread_id: string;
  role: 'user' | 'assistant' | 'system' | string;
  content: string;
  metadata: { redaction_kinds?: string[]; model?: string; node_id?: string; [k: string]: unknown } | null;
  created_at: string;
}

/** One `data:` chunk of a streamed completion (OpenAI's chat.completion.chunk). */
export interface CompletionChunk {
  id?: string;
  choices?: Array<{ index: number; delta?: { role?: string; content?: string }; finish_reason?: string | null }>;
  error?: { message: string; code?: string };
}

export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'canceled' | 'superseded';
export const TASK_STATUSES: TaskStatus[] = ['queued', 'running', 'completed', 'failed', 'canceled', 'superseded'];
export type InputMode = 'prompt' | 'script' | 'commands';

export interface Task {
  id: string;
  task_id: string;
  task_name: string;
  status: TaskStatus;
  closed: boolean;
  input_mode: InputMode;
  prompt: string;
  project_id: string;
  created_by: string;
  session_id: string | null;
  failure_reason: string | null;
  summary: unknown;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  ended_at: string | null;
}

export interface TaskJob {
  id: string;
  status: string;
  node_id: string | null;
  attempt: number;
  result: string | null;
  failure_code: string | null;
  started_at: string | null;
  ended_at: string | null;
}

export interface TaskResult {
  task_id: string;
  task_name: string;
  status: TaskStatus;
  jobs: TaskJob[];
  stdout: string;
  stderr: string;
  exit_code: number | null;
  failure_reason: string | null;
}

export interface TaskLogLine {
  run_id: string;
  seq: number;
  stream: 'stdout' | 'stderr';
  message: string;
  ts: string;
}

export type RunStatus = 'pending' | 'running' | 'waiting' | 'completed' | 'failed' | 'canceled';

export interface Run {
  id: string;
  run_id: string;
  task_id: string;
  /** In lists and single reads. */
  task_name?: string;
  processes_running?: number;
  job_id: string | null;
  session_id: string | null;
  parent_run_id: string | null;
  created_by: string | null;
  status: RunStatus;
  terminal: boolean;
  paused: boolean;
  last_seq: number;
  error: string | null;
  /** Single reads only: lists leave it out. */
  metadata?: Record<string, unknown> | null;
  started_at: string | null;
  ended_at: string | null;
  created_at: string;
}

export interface RunEvent {
  seq: number;
  kind: string;
  stream: 'stdout' | 'stderr' | null;
  message: string | null;
  data: unknown;
  created_at: string;
}

export interface Session {
  id: string;
  session_id: string;
  parent_session_id: string | null;
  user_id: string;
  project_id: string | null;
  title: string | null;
  created_at: string;
  updated_at: string;
}

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

export interface NodeInfo {
  id: string;
  node_id: string;
  node_slug: string;
  display_name: string | null;
  status: 'active' | 'stale';
  admin_state: 'enabled' | 'disabled' | 'draining';
  enabled: boolean;
  drained: boolean;
  dispatchable: boolean;
  last_seen_at: string | null;
  registered_at: string;
  labels: string[];
  config_ack_status: string | null;
  config_ack_error: unknown;
  capability_summary: CapabilitySummary | null;
  running_jobs: number;
  max_concurrency: number;
}

export interface JoinInfo {
  psk: string;
  control_plane_url: string;
  join_command: string;
  source: 'environment' | 'generated';
}

export interface PullProgress {
  status: string;
  completed?: number;
  total?: number;
  percent?: number;
}

/** "Share on LAN": `PUT /v1/system/lan-sharing {enabled}` (admins) answers the same shape. */
export interface LanSharing {
  enabled: boolean;
  /** `http://<address>:<port>`: what LAN browsers open; the OpenAI base URL adds `/v1`. */
  urls: string[];
  /** CYNODE_HOST decides (a non-loopback address): the switch is read-only. */
  managed_by_env: boolean;
}

export interface SystemInfo {
  version: string;
  database: { kind: 'pglite' | 'postgres'; description: string };
  data_dir: string;
  gateway: { bind_host: string; port: number; shared_on_lan: boolean; lan_urls: string[]; local_url: string };
  lan_sharing: LanSharing;
  embedded_node: boolean;
  initial_admin_password_file: boolean;
}

/** The desktop shell's bridge (absent in LAN browsers): its contract lives with the preload. */
export type { CynodeDesktopApi, DesktopSession } from '../../../preload/api';
import type { CynodeDesktopApi } from '../../../preload/api';

declare global {
  interface Window {
    cynode?: CynodeDesktopApi;
  }
}
