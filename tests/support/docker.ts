import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { LABEL_INSTANCE, LABEL_JOB } from '../../node-manager/sandbox/docker-runner';

/** The image the sandbox tests run; build/sandbox-image.sh makes it without a registry. */
export const SANDBOX_IMAGE = process.env.CYNODE_SANDBOX_IMAGE || 'cynode-sandbox:latest';

const IMAGE_SCRIPT = fileURLToPath(new URL('../../build/sandbox-image.sh', import.meta.url));

export const docker = new Dockerode();

let built: Promise<void> | undefined;

/**
 * Builds the sandbox image once per test process. The script leaves an up-to-date image alone
 * and serialises parallel callers, so every suite that needs it may simply ask.
 */
export function ensureSandboxImage(): Promise<void> {
  built ??= promisify(execFile)('bash', [IMAGE_SCRIPT, SANDBOX_IMAGE], { timeout: 120_000 }).then(
    () => undefined,
    (err: Error & { stderr?: string }) => {
      throw new Error(`build/sandbox-image.sh failed: ${err.stderr || err.message}`);
    },
  );
  return built;
}

/** Ids of the containers (running or not) that carry a label, e.g. one job's. */
export async function containersLabelled(label: string, value: string): Promise<string[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${label}=${value}`] } });
  return list.map((c) => c.Id);
}

export const jobContainers = (jobId: string) => containersLabelled(LABEL_JOB, jobId);
export const instanceContainers = (instanceId: string) => containersLabelled(LABEL_INSTANCE, instanceId);

/** Waits until the job's container runs, so a stop or a restart hits a live sandbox. */
export async function waitForRunningContainer(jobId: string, deadlineMs = 30_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const list = await docker.listContainers({ filters: { label: [`${LABEL_JOB}=${jobId}`], status: ['running'] } });
    if (list.length > 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no running container for job ${jobId} within ${deadlineMs} ms`);
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Runs a command in a throwaway container outside the runner, e.g. as a positive control with
 * host networking that proves a probe works where the sandbox must make it fail.
 */
export async function runRaw(command: string[], hostConfig: Dockerode.HostConfig): Promise<{ exitCode: number; output: string }> {
  const container = await docker.createContainer({ Image: SANDBOX_IMAGE, Cmd: command, HostConfig: hostConfig, AttachStdout: true, AttachStderr: true });
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const chunks: Buffer[] = [];
    const collect = new PassThrough().on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((r) => stream.once('end', r));
    docker.modem.demuxStream(stream, collect, collect);
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    await ended;
    return { exitCode: StatusCode, output: Buffer.concat(chunks).toString('utf8') };
  } finally {
    await container.remove({ force: true });
  }
}
