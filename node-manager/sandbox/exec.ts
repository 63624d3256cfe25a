import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import Dockerode from 'dockerode';
import { MAX_PROCESSES_PER_JOB, OUTPUT_CAP_BYTES, type ProcessState } from '../contract/worker-api';
import { LABEL_JOB, LABEL_MANAGED, streamEnded } from './docker-runner';
import { engineMessage, engineStatus, resolveEngine } from './engine';
import { OutputCapture } from './output-capture';

/** How long a process start waits for the sandbox of a job that is starting. */
const SANDBOX_START_WAIT_MS = 10_000;

/** The job has no running sandbox container on this node. */
export class NoSandboxError extends Error {}
/** The job's sandbox already runs as many processes as it may. */
export class TooManyProcessesError extends Error {}

export interface SandboxProcessesOptions {
  /** An engine connection; by default the same one the runner picks. */
  docker?: Dockerode;
  /** How long a terminated process has between SIGTERM and SIGKILL; default 5 s. */
  graceMs?: number;
  /** How long an ended process's state stays answerable; default 1 h. */
  retentionMs?: number;
  log?: (message: string) => void;
}

interface Tracked {
  processId: string;
  jobId: string;
  container: Dockerode.Container;
  startedAt: Date;
  stdout: OutputCapture;
  stderr: OutputCapture;
  status: ProcessState['status'];
  exitCode?: number;
  reason?: string;
  endedAt?: Date;
  terminateRequested: boolean;
  /** Resolves once the process has ended and its state is final. */
  ended: Promise<void>;
}

/** Where the wrapper shell leaves the process's pid (it is also its process group and session). */
const pidFile = (processId: string) => `/tmp/.cynode-proc-${processId}`;
/** How long a process killed by a signal waits to learn whether its sandbox is ending. */
const SANDBOX_END_WAIT_MS = 2_000;

/**
 * Background processes inside running sandboxes: each one a `docker exec` in its job's container,
 * so it shares the sandbox's user, limits, network and filesystem, and dies with it. A wrapper
 * shell records the pid before exec'ing the command; an exec'd process leads its own process
 * group, so a terminate reaches whatever it started too.
 */
export class SandboxProcesses {
  private readonly docker: Dockerode;
  private readonly graceMs: number;
  private readonly retentionMs: number;
  private readonly log: (message: string) => void;
  private readonly processes = new Map<string, Tracked>();
  private readonly waiters = new Set<() => void>();

  constructor(o: SandboxProcessesOptions = {}) {
    this.docker = o.docker ?? new Dockerode(resolveEngine().options);
    this.graceMs = o.graceMs ?? 5_000;
    this.retentionMs = o.retentionMs ?? 60 * 60 * 1000;
    this.log = o.log ?? ((m) => console.warn(m));
  }

  /** Starts a process in the job's container; a process id that exists answers its state instead. */
  async start(jobId: string, processId: string, command: string[], env: Record<string, string>): Promise<ProcessState> {
    const known = this.processes.get(processId);
    if (known) return this.state(known);
    const running = [...this.processes.values()].filter((p) => p.jobId === jobId && p.status === 'running').length;
    if (running >= MAX_PROCESSES_PER_JOB) throw new TooManyProcessesError(`job ${jobId} already runs ${running} processes, its limit`);

    const container = await this.containerOf(jobId, SANDBOX_START_WAIT_MS);
    if (!container) throw new NoSandboxError(`job ${jobId} has no running sandbox on this node`);
    let exec: Dockerode.Exec;
    let stream: NodeJS.ReadWriteStream;
    try {
      exec = await container.exec({
        // The script names only the tame process id; the caller's argv goes through "$@" untouched.
        Cmd: ['sh', '-c', `echo $$ > ${pidFile(processId)}; exec "$@"`, 'sh', ...command],
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
      });
      stream = await exec.start({ hijack: true, stdin: false });
    } catch (err) {
      // 409: the container stopped (or was frozen) between the lookup and the exec.
      if (engineStatus(err) === 409 || engineStatus(err) === 404) throw new NoSandboxError(`job ${jobId}'s sandbox is not running: ${engineMessage(err)}`);
      throw err;
    }
    // Registered before any further await, so a repeat of this process id finds it.
    const p = { processId, jobId, container, startedAt: new Date(), stdout: new OutputCapture(OUTPUT_CAP_BYTES), stderr: new OutputCapture(OUTPUT_CAP_BYTES), status: 'running', terminateRequested: false } as Tracked;
    this.processes.set(processId, p);
    this.docker.modem.demuxStream(stream, capture(p.stdout), capture(p.stderr));
    p.ended = streamEnded(stream).then(() => this.finish(p, exec));
    return this.state(p);
  }

  /** The process's state; with waitMs, once it has ended or after that long, whichever is first. */
  async status(processId: string, waitMs = 0): Promise<ProcessState | null> {
    const p = this.processes.get(processId);
    if (!p) return null;
    if (p.status === 'running' && waitMs > 0) {
      let wake!: () => void;
      const woken = new Promise<void>((resolve) => (wake = resolve));
      this.waiters.add(wake);
      const timer = setTimeout(wake, waitMs);
      await Promise.race([p.ended, woken]);
      clearTimeout(timer);
      this.waiters.delete(wake);
    }
    return this.state(p);
  }

  /** SIGTERM to the process's group, SIGKILL after the grace; answers its state after that. */
  async terminate(processId: string): Promise<ProcessState | null> {
    const p = this.processes.get(processId);
    if (!p) return null;
    if (p.status !== 'running') return this.state(p);
    p.terminateRequested = true;
    await this.signal(p, 'TERM');
    if (!(await settledWithin(p.ended, this.graceMs))) {
      await this.signal(p, 'KILL');
      await settledWithin(p.ended, this.graceMs);
    }
    return this.state(p);
  }

  /** Ends every wait (the server is closing); the processes themselves end with their sandboxes. */
  close(): void {
    for (const wake of this.waiters) wake();
  }

  /**
   * The job's running container. A job handed to this node a moment ago may still be creating
   * it: wait up to `waitMs` for it rather than answer "no sandbox" to a caller who is on time.
   */
  private async containerOf(jobId: string, waitMs = 0): Promise<Dockerode.Container | null> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_JOB}=${jobId}`] } });
      const running = list.find((c) => c.State === 'running');
      if (running) return this.docker.getContainer(running.Id);
      // Exited or dead: it will not come back. Created, or none yet: it may be starting.
      if (list.some((c) => c.State === 'exited' || c.State === 'dead') || Date.now() >= deadline) return null;
      await sleep(100);
    }
  }

  /** Signals the whole process group; waits a little for a pid file the wrapper may not have written yet. */
  private async signal(p: Tracked, signal: 'TERM' | 'KILL'): Promise<void> {
    const file = pidFile(p.processId);
    const script = `i=0; while [ ! -s ${file} ] && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; pid=$(cat ${file}) && kill -s ${signal} -$pid 2>/dev/null || kill -s ${signal} $pid`;
    try {
      const exec = await p.container.exec({ Cmd: ['sh', '-c', script], AttachStdout: true, AttachStderr: true, Tty: false });
      const stream = await exec.start({ hijack: true, stdin: false });
      stream.resume();
      await streamEnded(stream);
    } catch (err) {
      // 409/404: the sandbox is gone, and the process with it.
      const status = engineStatus(err);
      if (status !== 409 && status !== 404) this.log(`sandbox: could not signal process ${p.processId} of job ${p.jobId}: ${engineMessage(err)}`);
    }
  }

  private async finish(p: Tracked, exec: Dockerode.Exec): Promise<void> {
    let exitCode: number | undefined;
    try {
      const info = await exec.inspect();
      if (typeof info.ExitCode === 'number') exitCode = info.ExitCode;
    } catch {
      // The container (and the exec with it) is gone: its sandbox ended.
    }
    // A sandbox that is ending takes its processes with it (SIGKILL) a moment before the engine
    // reports it stopped: a process killed by a signal waits briefly for that report.
    const killed = !p.terminateRequested && (exitCode === undefined || exitCode > 128);
    const sandboxRunning = await this.stillRunning(p.container, killed ? SANDBOX_END_WAIT_MS : 0);
    if (p.terminateRequested) {
      p.status = 'terminated';
      p.reason = 'terminated on request';
    } else if (!sandboxRunning) {
      p.status = 'terminated';
      p.reason = 'the sandbox ended';
    } else {
      p.status = 'exited';
    }
    if (exitCode !== undefined) p.exitCode = exitCode;
    p.endedAt = new Date();
    setTimeout(() => this.processes.delete(p.processId), this.retentionMs).unref();
  }

  /** Whether the container runs, asked until it stops or waitMs has passed. */
  private async stillRunning(container: Dockerode.Container, waitMs: number): Promise<boolean> {
    const until = Date.now() + waitMs;
    for (;;) {
      const running = await container.inspect().then(
        (c) => c.State.Running === true,
        () => false,
      );
      if (!running || Date.now() >= until) return running;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private state(p: Tracked): ProcessState {
    return {
      version: 1,
      process_id: p.processId,
      job_id: p.jobId,
      status: p.status,
      ...(p.exitCode !== undefined ? { exit_code: p.exitCode } : {}),
      ...(p.reason !== undefined ? { reason: p.reason } : {}),
      started_at: p.startedAt.toISOString(),
      ...(p.endedAt ? { ended_at: p.endedAt.toISOString() } : {}),
      stdout: p.stdout.text(),
      stderr: p.stderr.text(),
      truncated: { stdout: p.stdout.truncated, stderr: p.stderr.truncated },
    };
  }
}

function capture(into: OutputCapture): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      into.push(chunk);
      done();
    },
  });
}


async function settledWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const r = await Promise.race([p.then(() => true), timeout]);
  clearTimeout(timer);
  return r;
}
