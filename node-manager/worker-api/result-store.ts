import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobRunResult } from '../contract/worker-api';
import type { SavedJobLog } from './log-lines';

/** What a running-job marker records: enough to answer for the job if this process dies. */
export interface RunningMarker {
  task_id: string;
  started_at: string;
}

export interface StoredResult {
  jobId: string;
  savedAt: Date;
}

/**
 * The Worker API's memory across restarts, as plain files under the state directory:
 * `results/<job_id>.json` holds a finished job's answer, `logs/<job_id>.json` its output lines,
 * `running/<job_id>` marks a job whose container may be running. A marker without a result after a restart is a job that was
 * interrupted. Job ids are checked path segments, never `.` or `..`.
 */
export class ResultStore {
  private readonly resultsDir: string;
  private readonly runningDir: string;
  private readonly logsDir: string;

  constructor(stateDir: string) {
    this.resultsDir = join(stateDir, 'results');
    this.runningDir = join(stateDir, 'running');
    this.logsDir = join(stateDir, 'logs');
  }

  async init(): Promise<void> {
    await mkdir(this.resultsDir, { recursive: true, mode: 0o700 });
    await mkdir(this.logsDir, { recursive: true, mode: 0o700 });
    await mkdir(this.runningDir, { recursive: true, mode: 0o700 });
  }

  async markRunning(jobId: string, marker: RunningMarker): Promise<void> {
    await writeAtomically(join(this.runningDir, jobId), JSON.stringify(marker));
  }

  async clearRunning(jobId: string): Promise<void> {
    await rm(join(this.runningDir, jobId), { force: true });
  }

  /** Markers left behind: the jobs that were running when the previous process ended. */
  async runningMarkers(): Promise<Array<{ jobId: string; marker: Partial<RunningMarker> }>> {
    const found: Array<{ jobId: string; marker: Partial<RunningMarker> }> = [];
    for (const name of await readdir(this.runningDir)) {
      if (isTemporary(name)) {
        await rm(join(this.runningDir, name), { force: true });
        continue;
      }
      let marker: Partial<RunningMarker> = {};
      try {
        marker = JSON.parse(await readFile(join(this.runningDir, name), 'utf8')) as Partial<RunningMarker>;
      } catch {
        // A marker cut short by the crash still says the job ran; its details are a nicety.
      }
      found.push({ jobId: name, marker });
    }
    return found;
  }

  /**
   * Saves a result (its log lines first, so a saved result always has them), then drops the
   * job's running marker (in that order: a crash between keeps the marker, never loses the job).
   */
  async save(result: JobRunResult, log?: SavedJobLog): Promise<Date> {
    if (log) await writeAtomically(this.logPath(result.job_id), JSON.stringify(log));
    await writeAtomically(this.resultPath(result.job_id), JSON.stringify(result));
    await this.clearRunning(result.job_id);
    return new Date();
  }

  async load(jobId: string): Promise<JobRunResult | undefined> {
    try {
      return JSON.parse(await readFile(this.resultPath(jobId), 'utf8')) as JobRunResult;
    } catch {
      return undefined;
    }
  }

  async loadLog(jobId: string): Promise<SavedJobLog | undefined> {
    try {
      return JSON.parse(await readFile(this.logPath(jobId), 'utf8')) as SavedJobLog;
    } catch {
      return undefined;
    }
  }

  async list(): Promise<StoredResult[]> {
    const stored: StoredResult[] = [];
    for (const name of await readdir(this.resultsDir)) {
      if (isTemporary(name)) {
        await rm(join(this.resultsDir, name), { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      const info = await stat(join(this.resultsDir, name)).catch(() => undefined);
      if (info) stored.push({ jobId: name.slice(0, -'.json'.length), savedAt: info.mtime });
    }
    return stored;
  }

  async remove(jobId: string): Promise<void> {
    await rm(this.resultPath(jobId), { force: true });
    await rm(this.logPath(jobId), { force: true });
  }

  private resultPath(jobId: string): string {
    return join(this.resultsDir, `${jobId}.json`);
  }

  private logPath(jobId: string): string {
    return join(this.logsDir, `${jobId}.json`);
  }
}

// Job ids never contain '+' (JOB_ID_PATTERN), so a temporary file cannot pass for a job's.
const TEMP_MARK = '+tmp-';
const isTemporary = (name: string) => name.includes(TEMP_MARK);

/** Readers see the old file or the whole new one, never half of it. */
async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = `${path}${TEMP_MARK}${randomBytes(6).toString('hex')}`;
  await writeFile(temp, content, { mode: 0o600 });
  await rename(temp, path);
}
