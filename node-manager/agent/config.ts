import { join } from 'node:path';
import { ollamaBaseUrl } from '../inference/ollama-host';
import type { InferenceMode } from './capability';

/** What `cynode node` can be told; `cynode node --help` and the README list the same. */
export const NODE_ENVIRONMENT: ReadonlyArray<{ name: string; default: string; description: string }> = [
  { name: 'CYNODE_CONTROL_URL', default: '(none; or --join)', description: 'The control plane to join, e.g. http://desktop.lan:12082.' },
  { name: 'CYNODE_NODE_PSK', default: '(none; or --psk)', description: 'The join key (shown by the console or GET /v1/nodes/join).' },
  { name: 'CYNODE_NODE_NAME', default: 'host name + suffix', description: 'Node name (slug): lowercase letters, digits, dot, dash, underscore.' },
  { name: 'CYNODE_WORKER_HOST', default: '0.0.0.0', description: 'Bind address of the Worker API (the orchestrator must reach it).' },
  { name: 'CYNODE_WORKER_PORT', default: '12090', description: 'Worker API port.' },
  { name: 'CYNODE_ADVERTISE_URL', default: 'http://<LAN address>:<port>', description: 'The Worker API URL the orchestrator calls, when the bind address is not it (NAT, proxy).' },
  { name: 'CYNODE_DATA_DIR', default: 'XDG data dir', description: 'Node state: identity and secret, job directories, retained results (in <dir>/node).' },
  { name: 'CYNODE_SANDBOX_IMAGE', default: 'cynode-sandbox:latest', description: 'Default sandbox image (build/sandbox-image.sh builds it without a registry).' },
  { name: 'CYNODE_NODE_MAX_JOBS', default: '2', description: 'Sandbox jobs this node runs at once.' },
  { name: 'OLLAMA_HOST', default: '127.0.0.1:11434', description: 'The Ollama this node serves models from (host:port or URL, as the Ollama CLI reads it). Set: used, never started. Unset: used when one answers there, else started as a container when the orchestrator says so.' },
  { name: 'CYNODE_INFERENCE_MODE', default: 'allow', description: 'allow, disabled (no inference on this node) or require.' },
  { name: 'CYNODE_OLLAMA_IMAGE', default: 'ollama/ollama', description: 'The Ollama image this node can start when no Ollama runs on the host; it must be present (never pulled automatically).' },
];

export const INFERENCE_MODES: readonly InferenceMode[] = ['allow', 'disabled', 'require'];

/** CYNODE_INFERENCE_MODE, checked; shared by `cynode node` and the embedded node. */
export function inferenceModeOf(raw: string | undefined): InferenceMode {
  if (raw === undefined || raw === '') return 'allow';
  if (!(INFERENCE_MODES as readonly string[]).includes(raw)) throw new NodeConfigError(`CYNODE_INFERENCE_MODE must be one of ${INFERENCE_MODES.join(', ')} (got "${raw}")`);
  return raw as InferenceMode;
}

/** OLLAMA_HOST, checked now rather than at the first inference request. */
export function ollamaHostOf(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  try {
    ollamaBaseUrl(raw);
  } catch (err) {
    throw new NodeConfigError((err as Error).message);
  }
  return raw;
}

export interface NodeSettings {
  controlUrl: string;
  psk: string;
  name: string | undefined;
  workerHost: string;
  workerPort: number;
  advertiseUrl: string | undefined;
  stateDir: string;
  sandboxImage: string;
  maxConcurrency: number;
  ollamaHost: string | undefined;
  inferenceMode: InferenceMode;
  ollamaImage: string;
}

export class NodeConfigError extends Error {}

const SLUG = /^[a-z0-9][a-z0-9._-]{0,62}$/;

function wholeNumber(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new NodeConfigError(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  return n;
}

function httpUrl(name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new NodeConfigError(`${name} must be a URL such as http://desktop.lan:12082 (got "${raw}")`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new NodeConfigError(`${name} must be an http:// or https:// URL (got "${raw}")`);
  return raw.replace(/\/+$/, '');
}

/** The environment, with flags winning; every problem is one clear sentence naming the setting. */
export function loadNodeSettings(env: NodeJS.ProcessEnv, flags: Partial<Record<'join' | 'psk' | 'name' | 'host' | 'workerPort' | 'advertiseUrl' | 'dataDir', string>>, defaultDataDir: string): NodeSettings {
  const controlUrl = flags.join ?? env.CYNODE_CONTROL_URL;
  if (!controlUrl) throw new NodeConfigError('say which control plane to join: --join http://HOST:12082 (or CYNODE_CONTROL_URL)');
  const psk = flags.psk ?? env.CYNODE_NODE_PSK;
  if (!psk) throw new NodeConfigError('the join key is missing: --psk KEY (or CYNODE_NODE_PSK); an admin finds it in the console or at GET /v1/nodes/join');
  const name = flags.name ?? (env.CYNODE_NODE_NAME || undefined);
  if (name !== undefined && !SLUG.test(name)) throw new NodeConfigError(`the node name must be lowercase letters, digits, dot, dash or underscore, at most 63 (got "${name}")`);
  const advertise = flags.advertiseUrl ?? (env.CYNODE_ADVERTISE_URL || undefined);
  return {
    controlUrl: httpUrl('--join', controlUrl),
    psk,
    name,
    workerHost: flags.host ?? (env.CYNODE_WORKER_HOST || '0.0.0.0'),
    workerPort: wholeNumber('CYNODE_WORKER_PORT', flags.workerPort ?? env.CYNODE_WORKER_PORT, 12090, 0, 65535),
    advertiseUrl: advertise === undefined ? undefined : httpUrl('--advertise-url', advertise),
    stateDir: join(flags.dataDir ?? (env.CYNODE_DATA_DIR || defaultDataDir), 'node'),
    sandboxImage: env.CYNODE_SANDBOX_IMAGE || 'cynode-sandbox:latest',
    maxConcurrency: wholeNumber('CYNODE_NODE_MAX_JOBS', env.CYNODE_NODE_MAX_JOBS, 2, 1, 256),
    ollamaHost: ollamaHostOf(env.OLLAMA_HOST),
    inferenceMode: inferenceModeOf(env.CYNODE_INFERENCE_MODE),
    ollamaImage: env.CYNODE_OLLAMA_IMAGE || 'ollama/ollama',
  };
}
