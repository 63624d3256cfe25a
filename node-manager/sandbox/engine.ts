import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type Dockerode from 'dockerode';

/** Where the container engine's API is, and how to name it in messages. */
export interface EngineEndpoint {
  /** Passed to `new Dockerode(...)`; empty when DOCKER_HOST says it (dockerode reads it itself). */
  options: Dockerode.DockerOptions;
  address: string;
}

const DOCKER_SOCKET = '/var/run/docker.sock';

/**
 * Picks the engine socket. An explicit DOCKER_HOST wins (the operator said so); otherwise a
 * Podman API socket when one exists, then Docker's.
 * Podman's socket speaks the Docker API, so the same dockerode code drives both.
 */
export function resolveEngine(env: NodeJS.ProcessEnv = process.env, exists: (path: string) => boolean = existsSync): EngineEndpoint {
  if (env.DOCKER_HOST) return { options: {}, address: env.DOCKER_HOST };
  const podman = [env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'podman', 'podman.sock') : undefined, '/run/podman/podman.sock'];
  for (const socketPath of podman) {
    if (socketPath && exists(socketPath)) return { options: { socketPath }, address: socketPath };
  }
  return { options: { socketPath: DOCKER_SOCKET }, address: DOCKER_SOCKET };
}

/** How a Dockerode handed in by the caller is connected, for messages. */
export function describeModem(docker: Dockerode): string {
  const modem = docker.modem as { socketPath?: unknown; host?: unknown; port?: unknown };
  if (typeof modem.socketPath === 'string') return modem.socketPath;
  if (typeof modem.host === 'string') return `${modem.host}${modem.port ? `:${String(modem.port)}` : ''}`;
  return 'the configured container engine';
}

/** The engine's own words for a failed call (docker-modem puts them in `json.message`). */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: unknown }; message?: unknown } | null;
  const raw = typeof e?.json?.message === 'string' ? e.json.message : typeof e?.message === 'string' ? e.message : String(err);
  return raw.trim();
}

export function engineStatus(err: unknown): number | undefined {
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}
