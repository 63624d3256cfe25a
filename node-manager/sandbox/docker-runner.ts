import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import Dockerode from 'dockerode';
import { OUTPUT_CAP_BYTES } from '../contract/worker-api';
import { describeModem, engineMessage, engineStatus, resolveEngine } from './engine';
import { OutputCapture } from './output-capture';
import type { InferenceProxyFactory, InferenceProxyHandle, SandboxLimits, SandboxOutcome, SandboxRunner, SandboxRunSpec, SandboxRuntimeInfo } from './runner';

export const DEFAULT_SANDBOX_IMAGE = 'cynode-sandbox:latest';
export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = { memoryMb: 512, pids: 256, cpus: 1 };

/** Labels on every sandbox container: what lets a restarted node find and remove its leftovers. */
export const LABEL_MANAGED = 'io.cynode.managed';
export const LABEL_INSTANCE = 'io.cynode.instance';
export const LABEL_TASK = 'io.cynode.task_id';
export const LABEL_JOB = 'io.cynode.job_id';

/** The unprivileged user sandboxes run as (nobody); the workspace must be writable by it. */
const SANDBOX_USER = '65534:65534';
/** After the container exits, how long its last output may take to arrive over the attach stream. */
const OUTPUT_DRAIN_MS = 5_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Where a job's inference socket appears inside its sandbox (the host side is <job dir>/inference). */
export const SANDBOX_INFERENCE_SOCKET = '/run/cynode/inference.sock';
/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

export interface DockerRunnerOptions {
  /** A stable id of this Node Manager: its containers carry it, so only its own orphans are reaped. */
  instanceId: string;
  /** Per-job directories live at <jobsDir>/<job_id>/{workspace,job}; this runner owns the whole directory. */
  jobsDir: string;
  limits?: Partial<SandboxLimits>;
  /** The node's default sandbox image, which check() requires to be present. */
  image?: string;
  /** An engine connection; by default DOCKER_HOST, else a Podman socket, else /var/run/docker.sock. */
  docker?: Dockerode;
  /** Where cleanup problems are reported (they never fail a job). */
  log?: (message: string) => void;
  /** Starts a job's inference proxy; without it a job asking for inference does not start. */
  inferenceProxy?: InferenceProxyFactory;
}

interface RunningJob {
  container?: Dockerode.Container;
  /** Set by whoever ends the job early; decides the status whatever the exit code says. */
  stopReason?: 'timeout' | 'canceled';
  exited?: boolean;
  /** Frozen by pause(); its timeout clock stands still meanwhile. */
  paused?: boolean;
  timeout?: { timer?: NodeJS.Timeout; deadline: number; leftMs: number; fire: () => void };
  /** The job's inference proxy, closed with the job. */
  proxy?: InferenceProxyHandle;
}

/**
 * Runs each job in a fresh container through the Docker API (Docker, or Podman's compatible
 * socket): no network, an unprivileged user without capabilities, memory/pids/cpu limits, the
 * job's own /workspace (read-write) and /job (read-only) bind mounts, bounded output capture, and
 * the container and job directory removed whatever happens.
 */
export class DockerRunner implements SandboxRunner {
  private readonly docker: Dockerode;
  private readonly address: string;
  private readonly limits: SandboxLimits;
  private readonly image: string;
  private readonly log: (message: string) => void;
  private readonly running = new Map<string, RunningJob>();
  /** Removals of finished jobs' containers and directories still under way. */
  private readonly cleanups = new Set<Promise<void>>();

  constructor(private readonly options: DockerRunnerOptions) {
    if (options.docker) {
      this.docker = options.docker;
      this.address = describeModem(options.docker);
    } else {
      const engine = resolveEngine();
      this.docker = new Dockerode(engine.options);
      this.address = engine.address;
    }
    this.limits = { ...DEFAULT_SANDBOX_LIMITS, ...options.limits };
    this.image = options.image ?? DEFAULT_SANDBOX_IMAGE;
    this.log = options.log ?? ((m) => console.warn(m));
  }

  async check(): Promise<string | null> {
    try {
      await this.docker.ping();
    } catch {
      return `no container engine at ${this.address}`;
    }
    try {
      await this.docker.getImage(this.image).inspect();
    } catch (err) {
      if (engineStatus(err) === 404) return `sandbox image ${this.image} is missing; run build/sandbox-image.sh`;
      return `cannot inspect sandbox image ${this.image}: ${engineMessage(err)}`;
    }
    try {
      await mkdir(this.options.jobsDir, { recursive: true });
      await access(this.options.jobsDir, constants.W_OK);
    } catch {
      return `the job directory ${this.options.jobsDir} is not writable`;
    }
    return null;
  }

  async info(): Promise<SandboxRuntimeInfo | null> {
    try {
      const [version, info] = await Promise.all([this.docker.version(), this.docker.info() as Promise<{ SecurityOptions?: string[] }>]);
      const podman = (version.Components ?? []).some((c) => /podman/i.test(c.Name)) || /podman/i.test(version.Platform?.Name ?? '');
      return {
        runtime: podman ? 'podman' : 'docker',
        version: version.Version,
        rootless: (info.SecurityOptions ?? []).some((o) => o.includes('name=rootless')),
      };
    } catch {
      return null;
    }
  }

  async run(spec: SandboxRunSpec, onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void): Promise<SandboxOutcome> {
    const startedAt = new Date();
    const notStarted = (why: string): SandboxOutcome => ({
      status: 'failed',
      exitCode: -1,
      stdout: '',
      stderr: why,
      truncated: { stdout: false, stderr: false },
      startedAt,
      endedAt: new Date(),
    });

    const dir = this.jobDirectory(spec.jobId);
    if (!dir) return notStarted(`job id ${JSON.stringify(spec.jobId)} cannot name a job directory`);
    const badFile = Object.keys(spec.files).find((name) => !isPathSegment(name));
    if (badFile !== undefined) return notStarted(`file name ${JSON.stringify(badFile)} is not allowed in /job`);
    if (this.running.has(spec.jobId)) return notStarted(`job ${spec.jobId} is already running on this node`);

    // Registered before the first await, so stop() can reach a job that is still being set up.
    const job: RunningJob = {};
    this.running.set(spec.jobId, job);
    const stdout = new OutputCapture(OUTPUT_CAP_BYTES);
    const stderr = new OutputCapture(OUTPUT_CAP_BYTES);
    let attached: NodeJS.ReadWriteStream | undefined;
    try {
      try {
        await this.prepareJobDirectory(dir, spec.files);
      } catch (err) {
        return notStarted(`the node could not prepare the job directory: ${(err as Error).message}`);
      }

      let inferenceToken: string | undefined;
      if (spec.useInference) {
        const started = await this.startInferenceProxy(dir, job);
        if (typeof started !== 'string') return notStarted(started.why);
        inferenceToken = started;
      }

      try {
        job.container = await this.docker.createContainer(this.containerOptions(spec, dir, inferenceToken));
      } catch (err) {
        return notStarted(
          engineStatus(err) === 404
            ? `sandbox image ${spec.image} is not present on this node (images are never pulled automatically): ${engineMessage(err)}`
            : `the sandbox container could not be created: ${engineMessage(err)}`,
        );
      }
      const container = job.container;
      if (job.stopReason) return this.outcome(job.stopReason, undefined, stdout, stderr, startedAt);

      // Attached before start, so not a byte of output is missed.
      try {
        attached = await container.attach({ stream: true, stdout: true, stderr: true });
      } catch (err) {
        return notStarted(`could not attach to the sandbox's output: ${engineMessage(err)}`);
      }
      const drained = streamEnded(attached);
      this.docker.modem.demuxStream(attached, sink('stdout', stdout, onOutput), sink('stderr', stderr, onOutput));

      try {
        await container.start();
      } catch (err) {
        if (job.stopReason) return this.outcome(job.stopReason, undefined, stdout, stderr, startedAt);
        return notStarted(`the sandbox did not start: ${engineMessage(err)}`);
      }
      // stop() may have come while start() was on its way, when there was nothing to kill yet.
      if (job.stopReason) await this.kill(container);

      job.timeout = {
        deadline: 0,
        leftMs: Math.min(spec.timeoutSeconds * 1000, MAX_TIMER_MS),
        fire: () => {
          job.stopReason ??= 'timeout';
          void this.kill(container);
        },
      };
      // A job paused while it was starting gets its clock when it resumes.
      if (!job.paused) armTimeout(job.timeout);
      let exitCode: number;
      try {
        exitCode = ((await container.wait()) as { StatusCode: number }).StatusCode;
      } catch (err) {
        return notStarted(`lost track of the sandbox: ${engineMessage(err)}`);
      } finally {
        clearTimeout(job.timeout.timer);
        job.exited = true;
      }
      await Promise.race([drained, delay(OUTPUT_DRAIN_MS)]);

      if (job.stopReason) return this.outcome(job.stopReason, undefined, stdout, stderr, startedAt);
      if (exitCode !== 0 && (await this.killedForMemory(container))) {
        stderr.push(Buffer.from(`\ncynode: the sandbox was killed for using more than its ${this.limits.memoryMb} MiB of memory\n`));
      }
      return this.outcome(exitCode === 0 ? 'completed' : 'failed', exitCode, stdout, stderr, startedAt);
    } finally {
      this.running.delete(spec.jobId);
      (attached as { destroy?: () => void } | undefined)?.destroy?.();
      // The outcome is known: answer now and clean up behind it (removing a container takes tens
      // of milliseconds). settled() waits for it, and a crash before it ends leaves an orphan the
      // next start reaps.
      this.track(this.cleanUp(spec.jobId, job.container, dir, job.proxy));
    }
  }

  /** Resolves once every finished job's container and directory are gone. */
  async settled(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.all([...this.cleanups]);
  }

  private track(cleanup: Promise<void>): void {
    this.cleanups.add(cleanup);
    void cleanup.finally(() => this.cleanups.delete(cleanup));
  }

  private async cleanUp(jobId: string, container: Dockerode.Container | undefined, dir: string, proxy?: InferenceProxyHandle): Promise<void> {
    // The socket goes with the job: nothing may reach the model in its name afterwards.
    await proxy?.close().catch((err: unknown) => this.log(`sandbox: could not close the inference proxy of job ${jobId}: ${(err as Error).message}`));
    if (container) {
      await container.remove({ force: true }).catch((err: unknown) => {
        if (engineStatus(err) !== 404) this.log(`sandbox: could not remove the container of job ${jobId}: ${engineMessage(err)}`);
      });
    }
    // The result lives in memory now; the workspace has no further use on this node.
    await rm(dir, { recursive: true, force: true }).catch((err: unknown) => this.log(`sandbox: could not remove ${dir}: ${(err as Error).message}`));
  }

  async stop(jobId: string): Promise<boolean> {
    const job = this.running.get(jobId);
    if (!job || job.exited) return false;
    job.stopReason ??= 'canceled';
    if (job.container) {
      // Some engines refuse to kill a frozen container.
      if (job.paused) await job.container.unpause().catch(() => {});
      await this.kill(job.container);
    }
    return true;
  }

  async pause(jobId: string): Promise<boolean> {
    const job = this.running.get(jobId);
    if (!job?.container || job.exited || job.stopReason) return false;
    if (job.paused) return true;
    try {
      await job.container.pause();
    } catch (err) {
      // 409: not running (not started yet, or already exited); 404: gone.
      const status = engineStatus(err);
      if (status === 409 || status === 404) return false;
      throw err;
    }
    job.paused = true;
    if (job.timeout?.timer) {
      clearTimeout(job.timeout.timer);
      job.timeout.timer = undefined;
      job.timeout.leftMs = Math.max(0, job.timeout.deadline - Date.now());
    }
    return true;
  }

  async resume(jobId: string): Promise<boolean> {
    const job = this.running.get(jobId);
    if (!job?.container || job.exited) return false;
    if (!job.paused) return true;
    try {
      await job.container.unpause();
    } catch (err) {
      const status = engineStatus(err);
      if (status === 409 || status === 404) return false;
      throw err;
    }
    job.paused = false;
    if (job.timeout && !job.timeout.timer) armTimeout(job.timeout);
    return true;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((id) => this.stop(id)));
  }

  async reapOrphans(): Promise<number> {
    const leftovers = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_INSTANCE}=${this.options.instanceId}`] },
    });
    let removed = 0;
    for (const c of leftovers) {
      const jobId = c.Labels?.[LABEL_JOB];
      if (jobId !== undefined && this.running.has(jobId)) continue;
      try {
        await this.docker.getContainer(c.Id).remove({ force: true });
        removed++;
      } catch (err) {
        if (engineStatus(err) !== 404) this.log(`sandbox: could not remove leftover container ${c.Id.slice(0, 12)}: ${engineMessage(err)}`);
      }
    }
    await this.removeStaleJobDirectories();
    return removed;
  }

  /**
   * Starts the job's inference proxy on a socket in <dir>/inference (mounted at /run/cynode) and
   * answers the token it accepts, or why it could not start.
   */
  private async startInferenceProxy(dir: string, job: RunningJob): Promise<string | { why: string }> {
    if (!this.options.inferenceProxy) return { why: 'this node offers no inference to sandboxes' };
    const socketDir = join(dir, 'inference');
    const socketPath = join(socketDir, 'inference.sock');
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
      return { why: `the inference socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes; give the node a shorter state directory` };
    }
    try {
      await mkdir(socketDir, { recursive: true });
      await chmod(socketDir, 0o755);
      const token = randomBytes(32).toString('base64url');
      job.proxy = await this.options.inferenceProxy(socketPath, token);
      return token;
    } catch (err) {
      return { why: `the node could not start the inference proxy: ${(err as Error).message}` };
    }
  }

  private containerOptions(spec: SandboxRunSpec, dir: string, inferenceToken?: string): Dockerode.ContainerCreateOptions {
    // Reserved variables are set last so a caller cannot forge them; nothing comes from
    // process.env, which may hold the node's own secrets.
    const inference =
      inferenceToken === undefined
        ? {}
        : {
            INFERENCE_PROXY_URL: `http+unix://${encodeURIComponent(SANDBOX_INFERENCE_SOCKET)}/`,
            // The same socket as a plain path, for `curl --unix-socket`.
            INFERENCE_PROXY_SOCKET: SANDBOX_INFERENCE_SOCKET,
            INFERENCE_PROXY_TOKEN: inferenceToken,
          };
    const env = { ...spec.env, ...inference, CYNODE_TASK_ID: spec.taskId, CYNODE_JOB_ID: spec.jobId, CYNODE_WORKSPACE_DIR: '/workspace' };
    const binds = [`${join(dir, 'workspace')}:/workspace:rw`, `${join(dir, 'job')}:/job:ro`];
    if (inferenceToken !== undefined) binds.push(`${join(dir, 'inference')}:${dirname(SANDBOX_INFERENCE_SOCKET)}:ro`);
    const memory = Math.round(this.limits.memoryMb * 1024 * 1024);
    return {
      Image: spec.image,
      Cmd: spec.command,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: '/workspace',
      User: SANDBOX_USER,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      Labels: {
        [LABEL_MANAGED]: 'true',
        [LABEL_INSTANCE]: this.options.instanceId,
        [LABEL_TASK]: spec.taskId,
        [LABEL_JOB]: spec.jobId,
      },
      HostConfig: {
        // Only deny-all policies exist: no interface but loopback.
        NetworkMode: 'none',
        Binds: binds,
        Memory: memory,
        MemorySwap: memory,
        PidsLimit: this.limits.pids,
        // The engine refuses more CPUs than the host has.
        NanoCpus: Math.round(Math.min(this.limits.cpus, availableParallelism()) * 1e9),
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: false,
        // Removed by us after the exit code is read; auto-removal would race with wait().
        AutoRemove: false,
        // Output reaches us over the attach stream; an engine-side log of a flood would only fill the disk.
        LogConfig: { Type: 'none', Config: {} },
      },
    };
  }

  private jobDirectory(jobId: string): string | undefined {
    return isPathSegment(jobId) ? join(this.options.jobsDir, jobId) : undefined;
  }

  private async prepareJobDirectory(dir: string, files: Record<string, string>): Promise<void> {
    // A directory of the same name can only be a leftover of a crash: start clean.
    await rm(dir, { recursive: true, force: true });
    const workspace = join(dir, 'workspace');
    const jobFiles = join(dir, 'job');
    await mkdir(workspace, { recursive: true });
    await mkdir(jobFiles, { recursive: true });
    // The sandbox user (nobody) owns nothing on the host; mkdir's mode is cut by the umask.
    await chmod(workspace, 0o777);
    await chmod(jobFiles, 0o755);
    for (const [name, content] of Object.entries(files)) {
      await writeFile(join(jobFiles, name), content, { mode: 0o644 });
      await chmod(join(jobFiles, name), 0o644);
    }
  }

  private async removeStaleJobDirectories(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.options.jobsDir);
    } catch {
      return;
    }
    for (const name of names) {
      if (!this.running.has(name)) await rm(join(this.options.jobsDir, name), { recursive: true, force: true }).catch(() => {});
    }
  }

  private async kill(container: Dockerode.Container): Promise<void> {
    await container.kill().catch((err: unknown) => {
      // 409: not running (yet, or any more); 404: already gone. Both mean nothing to kill.
      const status = engineStatus(err);
      if (status !== 409 && status !== 404) this.log(`sandbox: could not kill container ${container.id.slice(0, 12)}: ${engineMessage(err)}`);
    });
  }

  private async killedForMemory(container: Dockerode.Container): Promise<boolean> {
    try {
      return (await container.inspect()).State.OOMKilled === true;
    } catch {
      return false;
    }
  }

  private outcome(status: SandboxOutcome['status'], exitCode: number | undefined, stdout: OutputCapture, stderr: OutputCapture, startedAt: Date): SandboxOutcome {
    return {
      status,
      ...(exitCode !== undefined ? { exitCode } : {}),
      stdout: stdout.text(),
      stderr: stderr.text(),
      truncated: { stdout: stdout.truncated, stderr: stderr.truncated },
      startedAt,
      endedAt: new Date(),
    };
  }
}

/** Ids and file names become path segments on the host: '.' and '..' would escape. */
function isPathSegment(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,128}$/.test(name) && !/^\.+$/.test(name);
}

function sink(name: 'stdout' | 'stderr', capture: OutputCapture, onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      capture.push(chunk);
      try {
        onOutput?.(name, chunk);
      } catch {
        // A listener's failure must not cost the job its output.
      }
      done();
    },
  });
}

/** Resolves when a stream is done, however it ends. */
export function streamEnded(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
}

function armTimeout(t: NonNullable<RunningJob['timeout']>): void {
  t.deadline = Date.now() + t.leftMs;
  t.timer = setTimeout(t.fire, t.leftMs);
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
