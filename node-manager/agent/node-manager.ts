import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { NODE_SECRET_MIN_LENGTH, type ConfigAck, type NodeConfig } from '../contract/control-plane';
import { OllamaBackend, type InferenceStatus } from '../inference/ollama';
import { DEFAULT_OLLAMA_IMAGE, InferenceStartError, OllamaContainer } from '../inference/ollama-container';
import { ollamaBaseUrl } from '../inference/ollama-host';
import { startSandboxInferenceProxy } from '../inference/sandbox-proxy';
import { DockerRunner } from '../sandbox/docker-runner';
import { resolveEngine } from '../sandbox/engine';
import type { SandboxRunner } from '../sandbox/runner';
import { startWorkerApi } from '../worker-api/server';
import { collectCapability, defaultNodeSlug, type InferenceMode } from './capability';
import { ControlClient, ControlPlaneError, NotAuthorizedError } from './control-client';

/** The file in the state directory that holds the node's secret. */
export const NODE_SECRET_FILE = 'node-secret';

export interface NodeManagerOptions {
  /** The control plane, e.g. http://desktop.lan:12082. */
  controlUrl: string;
  psk: string;
  /** Node slug; default: host name plus a suffix kept in the state directory. */
  name?: string;
  labels?: string[];
  /** Where the node keeps its identity, job directories and retained results. */
  stateDir: string;
  workerHost: string;
  workerPort: number;
  /** The Worker API URL the orchestrator should call; default derived from the bind address. */
  advertiseUrl?: string;
  sandboxImage: string;
  maxConcurrency: number;
  logLevel: string;
  log: (message: string) => void;
  /** For tests: a runner other than Docker's (still a real one). */
  runner?: SandboxRunner;
  /** How long to keep retrying the first registration (the control plane may start later). */
  registerTimeoutMs?: number;
  /**
   * OLLAMA_HOST as given. Set: the node uses that Ollama and never starts one. Unset: it uses an
   * Ollama answering at 127.0.0.1:11434, or starts one when its config says so.
   */
  ollamaHost?: string;
  /** CYNODE_INFERENCE_MODE: `disabled` keeps the node out of inference; default `allow`. */
  inferenceMode?: InferenceMode;
  /**
   * The Ollama image this node can start (CYNODE_OLLAMA_IMAGE; default ollama/ollama). Only its
   * presence is checked here, to report honestly whether the node could start one; the image it
   * runs is the one its config names.
   */
  ollamaImage?: string;
  /** How long a started Ollama container may take to answer; default 120 s. */
  ollamaStartTimeoutMs?: number;
}

export interface NodeManager {
  nodeSlug: string;
  workerUrl: string;
  /**
   * The Ollama behind this node's inference routes (INFERENCE_PATHS): what an orchestrator in the
   * same process may call directly instead of its own Worker API over loopback.
   */
  ollamaUrl(): string;
  close(): Promise<void>;
}

/** A refused join (a wrong key, a name another node holds): retrying will not help, the operator must act. */
export class JoinRefusedError extends Error {}

/** A value kept in the state directory, readable by the node's user only, made on first start. */
async function kept(stateDir: string, name: string, make: () => string): Promise<string> {
  const path = join(stateDir, name);
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const value = make();
    await writeFile(path, value + '\n', { mode: 0o600 });
    return value;
  }
}

/**
 * The node's own secret: registering its name again needs it (the join key only admits new
 * nodes), so it lives as long as the node's identity, in the same state directory.
 */
async function nodeSecret(stateDir: string): Promise<string> {
  const secret = await kept(stateDir, NODE_SECRET_FILE, () => randomBytes(32).toString('base64url'));
  if (secret.length < NODE_SECRET_MIN_LENGTH) throw new JoinRefusedError(`${join(stateDir, NODE_SECRET_FILE)} is damaged (too short); restore it, or remove it and have an admin delete this node so that it can join anew`);
  return secret;
}

function firstLanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

function advertisedUrl(host: string, port: number, given: string | undefined): string {
  if (given) return given.replace(/\/+$/, '');
  const shown = host === '0.0.0.0' || host === '::' ? (firstLanAddress() ?? '127.0.0.1') : host;
  return `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The Node Manager: the same code for the desktop's embedded node and a remote box.
 * Startup: reap what a previous run left, open the Worker API (it refuses work until configured),
 * register with the join key, fetch the config, hand the Worker API its bearer token, ack
 * `applied`, then report capabilities as the heartbeat. A 401 on the way means the node token
 * expired or the node was deleted: register again.
 */
export async function startNodeManager(o: NodeManagerOptions): Promise<NodeManager> {
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 });
  // Also one made by an earlier version: job files and results are the owner's alone. Sandboxes
  // still reach their workspaces, which Docker mounts without walking this path as their user.
  await chmod(o.stateDir, 0o700);
  const id = await kept(o.stateDir, 'instance-id', randomUUID);
  const secret = await nodeSecret(o.stateDir);
  const nodeSlug = o.name ?? defaultNodeSlug(id);
  // Inference: a host Ollama when one answers (never a second one), else the node's own container
  // when its config says so.
  const mode = o.inferenceMode ?? 'allow';
  const ollamaUrl = ollamaBaseUrl(o.ollamaHost);
  // A node with inference disabled serves no model, to its sandboxes neither.
  const inferenceProxy =
    mode !== 'disabled' ? (socketPath: string, token: string) => startSandboxInferenceProxy({ socketPath, token, ollamaUrl: () => ollamaUrl, log: o.log }) : undefined;
  const runner = o.runner ?? new DockerRunner({ instanceId: id, jobsDir: join(o.stateDir, 'jobs'), image: o.sandboxImage, inferenceProxy });

  const reaped = await runner.reapOrphans().catch(() => 0);
  if (reaped > 0) o.log(`removed ${reaped} sandbox container(s) left by a previous run`);

  const ollama = new OllamaBackend(ollamaUrl);
  const managedOllama = new OllamaContainer({ docker: new Dockerode(resolveEngine().options), instanceId: id });
  let startedOllama = false;
  // An Ollama named by OLLAMA_HOST, or one found running, is the host's: this node uses it, and
  // keeps saying so while it is down, so that the control plane never asks it to start its own.
  let hostOllama = Boolean(o.ollamaHost?.trim());
  const inferenceNow = async (status?: InferenceStatus) => {
    const s = mode === 'disabled' ? { running: false, models: [] } : (status ?? (await ollama.models()));
    if (s.running && !startedOllama) hostOllama = true;
    const canStart = !hostOllama && (startedOllama || (await managedOllama.imagePresent(o.ollamaImage ?? DEFAULT_OLLAMA_IMAGE)));
    return { mode, existingService: hostOllama, canStart, status: s };
  };

  /** Brings inference to what the config asks; null when done, else why the config cannot apply. */
  const applyInference = async (cfg: NodeConfig): Promise<ConfigAck['error'] | null> => {
    if (mode === 'disabled') return null;
    const found = await ollama.probe();
    if (found.running) {
      await inferenceNow(found);
      return null;
    }
    if (hostOllama) return { type: 'inference_start_failed', message: `the Ollama at ${ollamaUrl} (OLLAMA_HOST) does not answer: ${found.error ?? 'unknown error'}` };
    // No Ollama, and the orchestrator did not ask for one (not supported, sandbox-only, ...).
    if (!cfg.inference_backend.enabled) return null;
    const image = cfg.inference_backend.image ?? DEFAULT_OLLAMA_IMAGE;
    // Started earlier and silent now: say so at once (this runs in the heartbeat; no long wait).
    if (startedOllama) return { type: 'inference_start_failed', message: `the Ollama container from ${image} does not answer at ${ollamaUrl}: ${found.error ?? 'unknown error'}` };
    try {
      await managedOllama.start(image, Number(new URL(ollamaUrl).port) || 11434);
      startedOllama = true;
      o.log(`node ${nodeSlug}: started Ollama from ${image}`);
    } catch (err) {
      return { type: 'inference_start_failed', message: err instanceof InferenceStartError ? err.message : `cannot start Ollama from ${image}: ${(err as Error).message}` };
    }
    const up = await ollama.waitUntilRunning(o.ollamaStartTimeoutMs ?? 120_000);
    return up.running ? null : { type: 'inference_start_failed', message: `Ollama from ${image} started but does not answer at ${ollamaUrl}: ${up.error ?? 'unknown error'}` };
  };

  let config: NodeConfig | undefined;
  const worker = await startWorkerApi({
    host: o.workerHost,
    port: o.workerPort,
    runner,
    nodeSlug,
    defaultImage: o.sandboxImage,
    getBearerToken: () => config?.worker_api.orchestrator_bearer_token ?? null,
    maxConcurrency: o.maxConcurrency,
    stateDir: o.stateDir,
    logLevel: o.logLevel,
    ollamaUrl: () => ollamaUrl,
  });
  const workerBaseUrl = advertisedUrl(o.workerHost, Number(new URL(worker.url).port), o.advertiseUrl);

  const control = new ControlClient(o.controlUrl);
  const capability = () =>
    collectCapability({
      nodeSlug,
      displayName: nodeSlug,
      labels: o.labels ?? [],
      workerBaseUrl,
      stateDir: o.stateDir,
      maxConcurrency: o.maxConcurrency,
      runner,
      runningJobIds: () => worker.runningJobIds(),
      inference: () => inferenceNow(),
    });

  const register = async () => {
    try {
      await control.register(o.psk, secret, await capability());
    } catch (err) {
      if (err instanceof NotAuthorizedError) throw new JoinRefusedError(`the control plane at ${o.controlUrl} refused the join key (check --psk)`);
      // The name belongs to another node (or this one lost its state directory).
      if (err instanceof ControlPlaneError && err.status === 409) throw new JoinRefusedError(`the control plane refused to register node "${nodeSlug}": ${err.detail}`);
      throw err;
    }
  };

  /**
   * Fetches the config and applies it when it is newer than what runs (ULIDs sort by time), or
   * tries again when the last attempt failed (an Ollama that came up since, an image loaded since).
   * The ack says `applied` only once the services it asks for answer.
   */
  let acked: { version: string; status: ConfigAck['status'] } | undefined;
  const syncConfig = async () => {
    const next = await control.fetchConfig();
    if (config && (next.config_version < config.config_version || (next.config_version === config.config_version && acked?.status === 'applied'))) return;
    config = next;
    const problem = await applyInference(next);
    const status = problem ? 'failed' : 'applied';
    if (acked?.version === next.config_version && acked.status === status) return; // a retry that changed nothing
    await control.ack({ version: 1, node_slug: nodeSlug, config_version: next.config_version, ack_at: new Date().toISOString(), status, ...(problem ? { error: problem } : {}) });
    acked = { version: next.config_version, status };
    if (problem) o.log(`node ${nodeSlug}: config ${next.config_version} failed: ${problem.message}`);
    else o.log(`node ${nodeSlug}: config ${next.config_version} applied; Worker API at ${workerBaseUrl}`);
  };

  // The first registration waits for a control plane that is still starting (or rebooting).
  const deadline = Date.now() + (o.registerTimeoutMs ?? 90_000);
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      await register();
      await syncConfig();
      break;
    } catch (err) {
      if (err instanceof JoinRefusedError || Date.now() > deadline) {
        await worker.close();
        await managedOllama.stop();
        throw err;
      }
      o.log(`node ${nodeSlug}: control plane not reachable yet (${(err as Error).message}); retrying`);
      await sleep(delay);
    }
  }

  let stopped = false;
  let wake: (() => void) | undefined;
  const heartbeat = (async () => {
    while (!stopped) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, (config?.heartbeat_interval_seconds ?? 15) * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (stopped) break;
      try {
        await control.report(await capability());
        await syncConfig();
      } catch (err) {
        if (stopped) break;
        if (err instanceof NotAuthorizedError) {
          // Expired node token, or an admin deleted the node: join again with the key.
          await register().then(syncConfig).catch((e: unknown) => o.log(`node ${nodeSlug}: re-registration failed: ${(e as Error).message}`));
        } else {
          o.log(`node ${nodeSlug}: heartbeat failed: ${(err as Error).message}`);
        }
      }
    }
  })();

  return {
    nodeSlug,
    workerUrl: workerBaseUrl,
    ollamaUrl: () => ollamaUrl,
    async close() {
      stopped = true;
      wake?.();
      await heartbeat;
      // Sandboxes do not outlive their Node Manager: closing kills them, and their jobs answer
      // "interrupted" (not "canceled": nobody canceled them) if the orchestrator asks again.
      await worker.close();
      // The Ollama this node started goes with it (its models stay in their volume).
      if (startedOllama) await managedOllama.stop();
    },
  };
}
