import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { NodeConfig } from '../contract/control-plane';
import { DockerRunner } from '../sandbox/docker-runner';
import type { SandboxRunner } from '../sandbox/runner';
import { startWorkerApi } from '../worker-api/server';
import { collectCapability, defaultNodeSlug } from './capability';
import { ControlClient, NotAuthorizedError } from './control-client';

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
}

export interface NodeManager {
  nodeSlug: string;
  workerUrl: string;
  close(): Promise<void>;
}

/** A refused join key: retrying will not help, the operator must act. */
export class JoinRefusedError extends Error {}

async function instanceId(stateDir: string): Promise<string> {
  const path = join(stateDir, 'instance-id');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    const id = randomUUID();
    await writeFile(path, id + '\n', { mode: 0o600 });
    return id;
  }
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
  const id = await instanceId(o.stateDir);
  const nodeSlug = o.name ?? defaultNodeSlug(id);
  const runner = o.runner ?? new DockerRunner({ instanceId: id, jobsDir: join(o.stateDir, 'jobs'), image: o.sandboxImage });

  const reaped = await runner.reapOrphans().catch(() => 0);
  if (reaped > 0) o.log(`removed ${reaped} sandbox container(s) left by a previous run`);

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
    });

  const register = async () => {
    try {
      await control.register(o.psk, await capability());
    } catch (err) {
      if (err instanceof NotAuthorizedError) throw new JoinRefusedError(`the control plane at ${o.controlUrl} refused the join key (check --psk)`);
      throw err;
    }
  };

  /** Fetches the config and applies it when it is newer than what runs (ULIDs sort by time). */
  const syncConfig = async () => {
    const next = await control.fetchConfig();
    if (config && next.config_version <= config.config_version) return;
    config = next;
    await control.ack({ version: 1, node_slug: nodeSlug, config_version: next.config_version, ack_at: new Date().toISOString(), status: 'applied' });
    o.log(`node ${nodeSlug}: config ${next.config_version} applied; Worker API at ${workerBaseUrl}`);
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
    async close() {
      stopped = true;
      wake?.();
      await heartbeat;
      // Sandboxes do not outlive their Node Manager: closing kills them, and their jobs answer
      // "interrupted" (not "canceled": nobody canceled them) if the orchestrator asks again.
      await worker.close();
    },
  };
}
