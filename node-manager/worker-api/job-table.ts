import type { JobRunResult, LogLine } from '../contract/worker-api';
import type { SandboxOutcome, SandboxRunner, SandboxRunSpec } from '../sandbox/runner';
import { JobLog, type JobLogLimits } from './log-lines';
import type { ResultStore } from './result-store';

export const INTERRUPTED_BY_RESTART = 'interrupted: the node manager restarted while this job ran';
export const INTERRUPTED_BY_SHUTDOWN = 'interrupted: the node manager stopped while this job ran';
export const DEFAULT_RESULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The node already runs as many jobs as it may. */
export class AtCapacityError extends Error {}
/** The table is closing with its server; no new job starts. */
export class ClosedError extends Error {}

export interface JobTableOptions {
  runner: SandboxRunner;
  store: ResultStore;
  nodeSlug: string;
  maxConcurrency: number;
  /** How long finished results stay answerable (purged after 24 h). */
  resultRetentionMs?: number;
  /** Bounds of each job's kept output lines; defaults in log-lines.ts. */
  logLimits?: Partial<JobLogLimits>;
  log: (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;
}

interface RunningJob {
  taskId: string;
  result: Promise<JobRunResult>;
  lines: JobLog;
  stopRequested: boolean;
  /** Set by close(): the run ends because this process stops, not because anyone asked. */
  interrupted: boolean;
}

interface FinishedJob {
  savedAt: number;
  /** Only when saving to disk failed: then memory is the one place the answer exists. */
  result?: JobRunResult;
  lines?: JobLog;
}

/** A job's result with how far its log went, for a caller that follows the lines. */
export interface FollowedResult {
  result: JobRunResult;
  lastSeq: number;
  dropped: number;
}

export interface FollowedJob {
  /** Resolves after the last line was handed over. */
  done: Promise<FollowedResult>;
  /** The caller went away: no more lines for it (the job runs on). */
  unfollow(): void;
}

/**
 * The node's jobs by job_id, the idempotency key of jobs:run: a job runs at most once
 * per node. A second request for a running job shares the first one's result; a finished job
 * answers its retained result; a job that was running when the process ended answers failed
 * (interrupted) and is never started again. Also enforces the node's job concurrency.
 *
 * The decision between "run", "wait" and "answer" is made synchronously in submit(), so two
 * requests arriving together cannot both start a container.
 */
export class JobTable {
  private readonly running = new Map<string, RunningJob>();
  private readonly finished = new Map<string, FinishedJob>();
  private readonly retentionMs: number;
  private purgeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: JobTableOptions) {
    this.retentionMs = o.resultRetentionMs ?? DEFAULT_RESULT_RETENTION_MS;
  }

  /** Loads what a previous process left: retained results, and jobs it was running when it ended. */
  async init(): Promise<void> {
    await this.o.store.init();
    for (const { jobId, savedAt } of await this.o.store.list()) this.finished.set(jobId, { savedAt: savedAt.getTime() });
    for (const { jobId, marker } of await this.o.store.runningMarkers()) {
      const now = new Date().toISOString();
      const result: JobRunResult = {
        version: 1,
        task_id: marker.task_id ?? '',
        job_id: jobId,
        status: 'failed',
        exit_code: -1,
        stdout: '',
        stderr: INTERRUPTED_BY_RESTART,
        started_at: marker.started_at ?? now,
        ended_at: now,
        truncated: { stdout: false, stderr: false },
        node_slug: this.o.nodeSlug,
      };
      await this.retain(result);
      this.o.log('warn', { job_id: jobId, task_id: marker.task_id }, 'job was running when the node manager stopped; answered as interrupted');
    }
    await this.purge();
    // Hourly is plenty for a 24 h retention; shorter retentions (tests) purge as often as they expire.
    this.purgeTimer = setInterval(() => void this.purge(), Math.max(250, Math.min(this.retentionMs, 60 * 60 * 1000)));
    this.purgeTimer.unref();
  }

  /**
   * The result of the job, running it only if this node never ran it. Throws AtCapacityError
   * (nothing was started) or ClosedError synchronously, before any waiting.
   */
  submit(spec: SandboxRunSpec): Promise<JobRunResult> {
    const job = this.attach(spec);
    if ('result' in job) return job.result;
    return job.finished.result ? Promise.resolve(job.finished.result) : this.loadRetained(spec);
  }

  /**
   * As submit, and hands `onLine` the job's output lines with seq > `after`: the kept ones at
   * once, then each new one as the sandbox writes it, all before `done` resolves. A finished
   * job's lines come from where its result is kept.
   */
  follow(spec: SandboxRunSpec, after: number, onLine: (line: LogLine) => void): FollowedJob {
    const job = this.attach(spec);
    if ('result' in job) {
      const unfollow = job.lines.follow(after, onLine);
      return { done: job.result.then((result) => ({ result, lastSeq: job.lines.lastSeq, dropped: job.lines.dropped })), unfollow };
    }
    let followed = true;
    const { finished } = job;
    const done = (async (): Promise<FollowedResult> => {
      const lines = finished.lines ?? JobLog.restore((await this.o.store.loadLog(spec.jobId)) ?? { dropped: 0, lines: [] });
      if (followed) lines.follow(after, onLine);
      const result = finished.result ?? (await this.loadRetained(spec));
      return { result, lastSeq: lines.lastSeq, dropped: lines.dropped };
    })();
    return { done, unfollow: () => (followed = false) };
  }

  /** The running job of this id, started now if this node never ran it, or its retained answer. */
  private attach(spec: SandboxRunSpec): RunningJob | { finished: FinishedJob } {
    const running = this.running.get(spec.jobId);
    if (running) return running;
    const finished = this.finished.get(spec.jobId);
    if (finished) return { finished };
    if (this.closed) throw new ClosedError('the node manager is stopping');
    if (this.running.size >= this.o.maxConcurrency) throw new AtCapacityError(`this node already runs ${this.running.size} job(s), its limit`);

    const job = { taskId: spec.taskId, lines: new JobLog(this.o.logLimits), stopRequested: false, interrupted: false } as RunningJob;
    this.running.set(spec.jobId, job);
    job.result = this.execute(spec, job);
    return job;
  }

  /** Asks a running job to stop; its jobs:run then answers `canceled`. */
  async stop(jobId: string): Promise<'stopping' | 'not_running'> {
    const job = this.running.get(jobId);
    if (!job) return 'not_running';
    job.stopRequested = true;
    await this.o.runner.stop(jobId);
    return 'stopping';
  }

  async stopAll(): Promise<string[]> {
    const ids = this.runningJobIds();
    await Promise.all(ids.map((id) => this.stop(id)));
    return ids;
  }

  runningJobIds(): string[] {
    return [...this.running.keys()];
  }

  /**
   * Stops taking jobs and kills the running ones. Their waiting callers get an `interrupted`
   * answer; their markers stay, so a restarted node answers the same way, as after a crash.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.purgeTimer);
    const jobs = [...this.running.entries()];
    for (const [, job] of jobs) job.interrupted = true;
    await Promise.all(jobs.map(([id]) => this.o.runner.stop(id)));
    await Promise.allSettled(jobs.map(([, job]) => job.result));
  }

  private async execute(spec: SandboxRunSpec, job: RunningJob): Promise<JobRunResult> {
    const startedAt = new Date();
    try {
      await this.o.store.markRunning(spec.jobId, { task_id: spec.taskId, started_at: startedAt.toISOString() });
    } catch (err) {
      // The run is still at-most-once while this process lives; only a crash could repeat it.
      this.o.log('warn', { job_id: spec.jobId, err: (err as Error).message }, 'could not record the running job on disk');
    }

    let outcome: SandboxOutcome;
    if (job.stopRequested || job.interrupted) {
      outcome = { status: 'canceled', stdout: '', stderr: '', truncated: { stdout: false, stderr: false }, startedAt, endedAt: new Date() };
    } else {
      try {
        outcome = await this.o.runner.run(spec, (stream, chunk) => job.lines.push(stream, chunk));
      } catch (err) {
        outcome = {
          status: 'failed',
          exitCode: -1,
          stdout: '',
          stderr: `the node could not run the job: ${(err as Error).message}`,
          truncated: { stdout: false, stderr: false },
          startedAt,
          endedAt: new Date(),
        };
      }
    }

    job.lines.end();
    if (job.interrupted && outcome.status === 'canceled') {
      this.running.delete(spec.jobId);
      return { ...this.toResult(spec, outcome), status: 'failed', exit_code: -1, stderr: INTERRUPTED_BY_SHUTDOWN };
    }
    const result = this.toResult(spec, outcome);
    await this.retain(result, job.lines);
    // Moved from running to finished with no await in between: no request can miss it.
    this.running.delete(spec.jobId);
    this.o.log('info', { job_id: spec.jobId, task_id: spec.taskId, status: result.status, exit_code: result.exit_code }, 'job finished');
    return result;
  }

  private async retain(result: JobRunResult, lines?: JobLog): Promise<void> {
    try {
      const savedAt = await this.o.store.save(result, lines?.snapshot());
      this.finished.set(result.job_id, { savedAt: savedAt.getTime() });
    } catch (err) {
      this.o.log('warn', { job_id: result.job_id, err: (err as Error).message }, 'could not save the job result on disk; keeping it in memory');
      this.finished.set(result.job_id, { savedAt: Date.now(), result, lines });
    }
  }

  private async loadRetained(spec: SandboxRunSpec): Promise<JobRunResult> {
    const result = await this.o.store.load(spec.jobId);
    if (result) return result;
    // The index said finished but the file is gone (purged or removed by hand): never run it again.
    const now = new Date().toISOString();
    return {
      version: 1,
      task_id: spec.taskId,
      job_id: spec.jobId,
      status: 'failed',
      exit_code: -1,
      stdout: '',
      stderr: 'this job already ran on this node and its result is no longer available',
      started_at: now,
      ended_at: now,
      truncated: { stdout: false, stderr: false },
      node_slug: this.o.nodeSlug,
    };
  }

  private async purge(): Promise<void> {
    const oldest = Date.now() - this.retentionMs;
    for (const [jobId, f] of this.finished) {
      if (f.savedAt >= oldest) continue;
      this.finished.delete(jobId);
      await this.o.store.remove(jobId).catch(() => {});
    }
  }

  private toResult(spec: SandboxRunSpec, outcome: SandboxOutcome): JobRunResult {
    const withExitCode = (outcome.status === 'completed' || outcome.status === 'failed') && outcome.exitCode !== undefined;
    return {
      version: 1,
      task_id: spec.taskId,
      job_id: spec.jobId,
      status: outcome.status,
      ...(withExitCode ? { exit_code: outcome.exitCode } : {}),
      stdout: outcome.stdout,
      stderr: outcome.stderr,
      started_at: outcome.startedAt.toISOString(),
      ended_at: outcome.endedAt.toISOString(),
      truncated: outcome.truncated,
      node_slug: this.o.nodeSlug,
    };
  }
}
