import { setTimeout as timeout } from 'node:timers/promises';
import type { JobRunResult } from '../../node-manager/contract/worker-api';
import type { NodeTarget } from '../nodes/node-client';
import type { NewRunEvent } from '../runs/record';
import type { JobEnd, RunningJob } from './store';

/** pino's shape (Fastify's logger fits); nothing here ever logs a token. */
export interface DispatchLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** How a job ended, as the dispatcher records it under the job's lease. */
export interface JobOutcome {
  status: JobEnd['status'];
  result: JobRunResult | null;
  failureCode: string | null;
  reason: string | null;
  /** The attempt's outcome in the job's attempts log. */
  outcome: string;
  /** What the node said, for the attempts log (the task's owner gets `reason`). */
  detail?: string;
  /** The output lines, when they did not reach the ledger while the node streamed them. */
  lines?: NewRunEvent[];
}

/** What a call to a node for a leased job needs from the dispatcher that leased it. */
export interface LeasedJobs {
  /** Records how the job ended, only while its lease is the one the call was made under. */
  end(job: RunningJob, outcome: JobOutcome): Promise<void>;
  /** The node lost the job (it stopped or restarted mid-job, or stopped serving): as a node loss. */
  lose(job: RunningJob, detail: string): Promise<void>;
  /** The node's Worker API address and token; null when it has none on record. */
  target(nodeId: string): Promise<NodeTarget | null>;
}

const DEFAULT_TIMEOUT_SECONDS = 600;
export const RETRY_FIRST_MS = 500;
export const RETRY_MAX_MS = 5_000;

/** The job's time limit from its payload (written by the task service). */
export function timeoutOf(payload: Record<string, unknown>): number {
  const t = payload.timeout_seconds;
  return typeof t === 'number' && Number.isInteger(t) && t > 0 ? t : DEFAULT_TIMEOUT_SECONDS;
}

/** Waits `ms`, or less when `signal` aborts (the caller checks the signal next). */
export const sleep = (ms: number, signal: AbortSignal): Promise<void> => timeout(ms, undefined, { signal }).catch(() => {});

export const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
