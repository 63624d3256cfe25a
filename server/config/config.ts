import { isIP } from 'node:net';
import { join } from 'node:path';
import envPaths from 'env-paths';

/** Everything `cynode serve` can be told, from the environment and the command line. */
export interface ServerConfig {
  dataDir: string;
  host: string;
  gatewayPort: number;
  controlPort: number;
  /** PostgreSQL instead of PGlite in the data directory. */
  databaseUrl: string | undefined;
  /** First-run admin password; generated when absent. */
  adminPassword: string | undefined;
  /** base64 32-byte master key; otherwise a 0600 key file in the data directory. */
  masterKey: string | undefined;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  maxBodyBytes: number;
  maxConcurrentRequests: number;
  /** Longest a client may take to send a whole request, headers and body (then 408). */
  requestTimeoutSeconds: number;
  /** Live event streams one user may hold open on this gateway. */
  maxStreamsPerUser: number;
  /** Live event streams one client address may hold open on this gateway. */
  maxStreamsPerAddress: number;
  /** Browser origins allowed besides the gateway's own. */
  allowedOrigins: string[];
  /** Host names the servers answer to besides loopback, this machine's name and the address a request arrived on. */
  allowedHosts: string[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Tasks: the sandbox time limit of a job when the task names none. */
  taskTimeoutSeconds: number;
  /** Tasks: the sandbox image jobs run in when the task names none. */
  sandboxImage: string;
  /** Tasks: how long a job waits while no node at all can take it before it fails. */
  noNodeGraceSeconds: number;
  /** Chat: the whole completion's cap before 504 cynodeai_completion_timeout (the generation is aborted). */
  chatTimeoutSeconds: number;
  /** Chat: extra attempts after a transient upstream failure (before any token), possibly on another node. */
  chatRetries: number;
  /** Chat: `: keepalive` comments this often while a stream waits for its first token. */
  chatKeepaliveSeconds: number;
  /** Nodes: the join pre-shared key; when unset one is generated, stored sealed, and can be rotated. */
  nodePsk: string | undefined;
  /** Nodes: how often a node reports (its heartbeat). */
  nodeHeartbeatSeconds: number;
  /** Nodes: a node that has not reported for this long turns `stale` and gets no new work. */
  nodeStaleSeconds: number;
  /** The desktop's own node: started by `cynode serve`, joining over loopback like any other. */
  embeddedNode: boolean;
  /** Embedded node: its Worker API port on loopback (0: the OS picks). */
  embeddedWorkerPort: number;
  /** Embedded node: sandbox jobs it runs at once. */
  embeddedNodeMaxJobs: number;
  /** Inference: the image a node runs when it starts its own Ollama (its config says so). */
  ollamaImage: string;
  /** Retention: how often the gateway purges expired run logs and transcript segments. */
  retentionIntervalSeconds: number;
  /** Days access-audit decisions are kept before the retention purge deletes them (0: forever). */
  accessAuditRetentionDays: number;
  /** Embedded node: OLLAMA_HOST as given (host:port or URL); unset: 127.0.0.1:11434, or a container. */
  ollamaHost: string | undefined;
  /** Embedded node: allow, disabled or require inference. */
  inferenceMode: 'allow' | 'disabled' | 'require';
  /** Connectors: calls per minute one instance takes (also its burst); 0 means no limit. */
  connectorRatePerMinute: number;
  /** Connectors: consecutive transient failures that turn an instance `degraded`; 0 never does. */
  connectorBreakerFailures: number;
  /** Connectors: how often degraded instances are health-checked. */
  connectorHealthSeconds: number;
}

/** One line per variable; the README and `cynode serve --help` are generated from this list. */
export const ENVIRONMENT: ReadonlyArray<{ name: string; default: string; description: string }> = [
  { name: 'CYNODE_DATA_DIR', default: defaultDataDir(), description: 'Data directory: PGlite database, master key, first-run admin password file.' },
  { name: 'CYNODE_HOST', default: '127.0.0.1', description: 'Bind address of the gateway and control plane (0.0.0.0 shares them on the LAN).' },
  { name: 'CYNODE_GATEWAY_PORT', default: '12080', description: 'User API Gateway port (REST, OpenAI-compatible endpoint, console).' },
  { name: 'CYNODE_CONTROL_PORT', default: '12082', description: 'Control-plane port (node registration, config, capability reports).' },
  { name: 'DATABASE_URL', default: '(unset: PGlite)', description: 'PostgreSQL connection string; replaces the embedded PGlite database.' },
  { name: 'CYNODE_ADMIN_PASSWORD', default: '(generated)', description: 'Password of the `admin` user created on first run; ignored afterwards.' },
  { name: 'CYNODE_MASTER_KEY', default: '(key file)', description: 'base64 32-byte master key; otherwise `master.key` (0600) in the data directory. Gateways sharing one PostgreSQL need the same key.' },
  { name: 'CYNODE_ACCESS_TOKEN_TTL', default: '900', description: 'Access token lifetime in seconds.' },
  { name: 'CYNODE_REFRESH_TOKEN_TTL', default: '604800', description: 'Session (refresh token) lifetime in seconds.' },
  { name: 'CYNODE_MAX_BODY_BYTES', default: '10485760', description: 'Largest request body accepted (413 above).' },
  { name: 'CYNODE_MAX_CONCURRENT_REQUESTS', default: '256', description: 'Requests served at once before answering 429 with Retry-After.' },
  { name: 'CYNODE_REQUEST_TIMEOUT_SECONDS', default: '10', description: 'Longest a client may take to send a whole request, headers and body (1 to 600); then 408 and the connection closes.' },
  { name: 'CYNODE_MAX_STREAMS_PER_USER', default: '32', description: 'Live event streams one user may hold open at once (429 beyond); they do not count as concurrent requests.' },
  { name: 'CYNODE_MAX_STREAMS_PER_ADDRESS', default: '128', description: 'Live event streams one client address may hold open at once (429 beyond).' },
  { name: 'CYNODE_ALLOWED_ORIGINS', default: '(none)', description: 'Comma-separated browser origins allowed besides the gateway itself.' },
  { name: 'CYNODE_ALLOWED_HOSTS', default: '(none)', description: 'Comma-separated host names the gateway and control plane answer to besides loopback, this machine\'s name and the address a request arrived on (421 otherwise).' },
  { name: 'CYNODE_LOG_LEVEL', default: 'info', description: 'fatal, error, warn, info, debug, trace or silent.' },
  { name: 'CYNODE_CHAT_TIMEOUT_SECONDS', default: '120', description: 'Longest a chat completion may take, model loading included (5 to 3600); then 504 cynodeai_completion_timeout and the generation is aborted.' },
  { name: 'CYNODE_CHAT_RETRIES', default: '2', description: 'Extra attempts after a transient inference failure before any token was sent (0 to 10), on another node with the model when there is one; then 502.' },
  { name: 'CYNODE_CHAT_KEEPALIVE_SECONDS', default: '10', description: 'A streaming chat sends a `: keepalive` comment this often while it waits for the first token (1 to 300).' },
  { name: 'CYNODE_TASK_TIMEOUT_SECONDS', default: '600', description: 'Time limit of a task\'s sandbox job when the task sets no timeout_seconds (1 to 10800).' },
  { name: 'CYNODE_SANDBOX_IMAGE', default: 'cynode-sandbox:latest', description: 'Container image sandbox jobs run in when the task names no image.' },
  { name: 'CYNODE_NO_NODE_GRACE_SECONDS', default: '300', description: 'A queued job fails with no_dispatchable_node after waiting this long while no node at all could take it.' },
  { name: 'CYNODE_NODE_PSK', default: '(generated)', description: 'Pre-shared key nodes join with (at least 16 characters). Unset: generated on first start, stored sealed, shown and rotated by admins through the gateway.' },
  { name: 'CYNODE_NODE_HEARTBEAT_SECONDS', default: '15', description: 'How often nodes send their capability report, the heartbeat (1 to 60).' },
  { name: 'CYNODE_EMBEDDED_NODE', default: '1', description: 'Start the local node with the orchestrator (0 turns it off: only joined nodes run work).' },
  { name: 'CYNODE_WORKER_PORT', default: '(any free port)', description: 'Port of the local node\'s Worker API, on loopback.' },
  { name: 'CYNODE_NODE_MAX_JOBS', default: '2', description: 'Sandbox jobs the local node runs at once.' },
  { name: 'CYNODE_OLLAMA_IMAGE', default: 'ollama/ollama', description: 'Image a node runs when it starts its own Ollama (no Ollama on the host, inference allowed). Never pulled automatically.' },
  { name: 'OLLAMA_HOST', default: '127.0.0.1:11434', description: 'The local node\'s Ollama (host:port or URL, as the Ollama CLI reads it). Set: used, never started. Unset: used when one answers there, else started as a container.' },
  { name: 'CYNODE_INFERENCE_MODE', default: 'allow', description: 'The local node\'s inference: allow, disabled (sandboxes only) or require.' },
  { name: 'CYNODE_CONNECTOR_RATE_PER_MINUTE', default: '60', description: 'Calls per minute one connector instance takes, also its burst (429 beyond; 0: no limit).' },
  { name: 'CYNODE_CONNECTOR_BREAKER_FAILURES', default: '5', description: 'Consecutive transient failures that turn a connector instance `degraded` until a health check passes (0: never).' },
  { name: 'CYNODE_CONNECTOR_HEALTH_SECONDS', default: '30', description: 'How often the background connector check runs: degraded instances are health-checked, instances whose credential expired are marked `credential_expired` (1 to 3600).' },
  { name: 'CYNODE_RETENTION_INTERVAL_SECONDS', default: '3600', description: 'How often the gateway purges run log lines and transcript segments older than their retention policy (60 to 604800).' },
  { name: 'CYNODE_ACCESS_AUDIT_RETENTION_DAYS', default: '90', description: 'Days access-audit decisions (`/v1/audit/access`) are kept; the retention purge deletes older ones (0: kept forever).' },
  { name: 'CYNODE_NODE_STALE_SECONDS', default: '45', description: 'A node silent for this long turns stale and its running jobs are moved elsewhere (2 to 90, more than the heartbeat; default 3 heartbeats).' },
];

export function defaultDataDir(): string {
  return envPaths('cynode', { suffix: '' }).data;
}

export class ConfigError extends Error {}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  }
  return n;
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be 1 or 0 (got "${raw}")`);
}

/** A comma-separated list, blanks dropped. */
function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/;

/** Names as a Host header carries them, without port: `desktop.lan`, `192.168.1.20`, `fd00::20`. */
function hostNames(raw: string | undefined): string[] {
  return list(raw).map((given) => {
    const name = given.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    if (!HOST_NAME.test(name) && isIP(name) === 0) throw new ConfigError(`CYNODE_ALLOWED_HOSTS: "${given}" is not a host name or address (give no scheme or port)`);
    return name;
  });
}

const INFERENCE_MODES = ['allow', 'disabled', 'require'] as const;

function inferenceMode(raw: string | undefined): ServerConfig['inferenceMode'] {
  if (raw === undefined || raw === '') return 'allow';
  if (!(INFERENCE_MODES as readonly string[]).includes(raw)) throw new ConfigError(`CYNODE_INFERENCE_MODE must be one of ${INFERENCE_MODES.join(', ')} (got "${raw}")`);
  return raw as ServerConfig['inferenceMode'];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<ServerConfig> = {}): ServerConfig {
  const logLevel = (env.CYNODE_LOG_LEVEL || 'info') as ServerConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`CYNODE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const databaseUrl = env.DATABASE_URL || undefined;
  const nodeHeartbeatSeconds = int(env, 'CYNODE_NODE_HEARTBEAT_SECONDS', 15, 1, 60);
  const config: ServerConfig = {
    dataDir: env.CYNODE_DATA_DIR || defaultDataDir(),
    host: env.CYNODE_HOST || '127.0.0.1',
    gatewayPort: int(env, 'CYNODE_GATEWAY_PORT', 12080, 0, 65535),
    controlPort: int(env, 'CYNODE_CONTROL_PORT', 12082, 0, 65535),
    databaseUrl,
    adminPassword: env.CYNODE_ADMIN_PASSWORD || undefined,
    masterKey: env.CYNODE_MASTER_KEY || undefined,
    accessTokenTtlSeconds: int(env, 'CYNODE_ACCESS_TOKEN_TTL', 900, 5, 86_400),
    refreshTokenTtlSeconds: int(env, 'CYNODE_REFRESH_TOKEN_TTL', 7 * 86_400, 60, 365 * 86_400),
    maxBodyBytes: int(env, 'CYNODE_MAX_BODY_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxConcurrentRequests: int(env, 'CYNODE_MAX_CONCURRENT_REQUESTS', 256, 1, 100_000),
    requestTimeoutSeconds: int(env, 'CYNODE_REQUEST_TIMEOUT_SECONDS', 10, 1, 600),
    maxStreamsPerUser: int(env, 'CYNODE_MAX_STREAMS_PER_USER', 32, 1, 100_000),
    maxStreamsPerAddress: int(env, 'CYNODE_MAX_STREAMS_PER_ADDRESS', 128, 1, 100_000),
    allowedOrigins: list(env.CYNODE_ALLOWED_ORIGINS),
    allowedHosts: hostNames(env.CYNODE_ALLOWED_HOSTS),
    logLevel,
    chatTimeoutSeconds: int(env, 'CYNODE_CHAT_TIMEOUT_SECONDS', 120, 5, 3600),
    chatRetries: int(env, 'CYNODE_CHAT_RETRIES', 2, 0, 10),
    chatKeepaliveSeconds: int(env, 'CYNODE_CHAT_KEEPALIVE_SECONDS', 10, 1, 300),
    taskTimeoutSeconds: int(env, 'CYNODE_TASK_TIMEOUT_SECONDS', 600, 1, 10_800),
    sandboxImage: env.CYNODE_SANDBOX_IMAGE || 'cynode-sandbox:latest',
    noNodeGraceSeconds: int(env, 'CYNODE_NO_NODE_GRACE_SECONDS', 300, 0, 7 * 86_400),
    nodePsk: env.CYNODE_NODE_PSK || undefined,
    nodeHeartbeatSeconds,
    // Three missed heartbeats, but never longer than the 90 s within which a lost node must be noticed.
    nodeStaleSeconds: int(env, 'CYNODE_NODE_STALE_SECONDS', Math.min(90, 3 * nodeHeartbeatSeconds), 2, 90),
    embeddedNode: flag(env, 'CYNODE_EMBEDDED_NODE', true),
    embeddedWorkerPort: int(env, 'CYNODE_WORKER_PORT', 0, 0, 65535),
    embeddedNodeMaxJobs: int(env, 'CYNODE_NODE_MAX_JOBS', 2, 1, 256),
    ollamaImage: env.CYNODE_OLLAMA_IMAGE || 'ollama/ollama',
    ollamaHost: env.OLLAMA_HOST?.trim() || undefined,
    inferenceMode: inferenceMode(env.CYNODE_INFERENCE_MODE),
    retentionIntervalSeconds: int(env, 'CYNODE_RETENTION_INTERVAL_SECONDS', 3600, 60, 7 * 86_400),
    accessAuditRetentionDays: int(env, 'CYNODE_ACCESS_AUDIT_RETENTION_DAYS', 90, 0, 36_500),
    connectorRatePerMinute: int(env, 'CYNODE_CONNECTOR_RATE_PER_MINUTE', 60, 0, 1_000_000),
    connectorBreakerFailures: int(env, 'CYNODE_CONNECTOR_BREAKER_FAILURES', 5, 0, 1000),
    connectorHealthSeconds: int(env, 'CYNODE_CONNECTOR_HEALTH_SECONDS', 30, 1, 3600),
    ...overrides,
  };
  // After the overrides, so that `--database-url` is checked as well.
  if (config.databaseUrl && !/^postgres(ql)?:\/\//.test(config.databaseUrl)) {
    throw new ConfigError('DATABASE_URL must start with postgres:// or postgresql://');
  }
  if (config.adminPassword !== undefined && config.adminPassword.length < 8) {
    throw new ConfigError('CYNODE_ADMIN_PASSWORD must be at least 8 characters');
  }
  if (config.nodePsk !== undefined && config.nodePsk.length < 16) {
    throw new ConfigError('CYNODE_NODE_PSK must be at least 16 characters');
  }
  // A node that reports on time must never look stale between two reports.
  if (config.nodeStaleSeconds <= config.nodeHeartbeatSeconds) {
    throw new ConfigError(`CYNODE_NODE_STALE_SECONDS (${config.nodeStaleSeconds}) must be more than CYNODE_NODE_HEARTBEAT_SECONDS (${config.nodeHeartbeatSeconds})`);
  }
  return config;
}

export const dataFiles = {
  masterKey: (dataDir: string) => join(dataDir, 'master.key'),
  initialAdminPassword: (dataDir: string) => join(dataDir, 'initial-admin-password'),
  pglite: (dataDir: string) => join(dataDir, 'pglite'),
};
