/**
 * The Worker API contract: how the orchestrator hands a node one job and what
 * comes back. Shared by the dispatcher (client) and the Node Manager (server); how a task travels
 * through it: docs/architecture.md#how-a-task-travels.
 */
import { Type, type Static } from '@sinclair/typebox';

/**
 * Ids are path segments under the node's job directory: keep them tame, and never
 * `.` or `..`, which would name the directory above.
 */
export const JOB_ID_PATTERN = '^(?!\\.+$)[A-Za-z0-9._-]{1,128}$';

export const NETWORK_POLICIES = ['restricted', 'none'] as const;

export const SandboxSpec = Type.Object(
  {
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })),
    command: Type.Array(Type.String({ maxLength: 1_000_000 }), { minItems: 1, maxItems: 1000 }),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' }), Type.String({ maxLength: 100_000 }), { additionalProperties: false })),
    timeout_seconds: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Only deny-all policies exist so far; anything else is refused with 400. */
    network_policy: Type.Optional(Type.String({ maxLength: 50 })),
    /** Extension: files written to the job's /job directory (read-only inside), e.g. a script. */
    files: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$' }), Type.String(), { maxProperties: 20 })),
    /**
     * Extension (README, Inference on nodes): the job reaches its node's model through an inference proxy on a
     * Unix socket mounted into the sandbox; env INFERENCE_PROXY_URL (`http+unix://…`) and
     * INFERENCE_PROXY_TOKEN (a per-job secret the proxy requires as a bearer token). The sandbox
     * keeps no network.
     */
    use_inference: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type SandboxSpec = Static<typeof SandboxSpec>;

export const JobRunRequest = Type.Object(
  {
    version: Type.Literal(1),
    task_id: Type.String({ pattern: JOB_ID_PATTERN }),
    job_id: Type.String({ pattern: JOB_ID_PATTERN }),
    sandbox: SandboxSpec,
    /** Streaming answers only: send the log lines with a seq above this (the last one the caller has). */
    log_after: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type JobRunRequest = Static<typeof JobRunRequest>;

export const JobStatus = Type.Union([Type.Literal('completed'), Type.Literal('failed'), Type.Literal('timeout'), Type.Literal('canceled')]);
export type JobStatus = Static<typeof JobStatus>;

export const JobRunResult = Type.Object({
  version: Type.Literal(1),
  task_id: Type.String(),
  job_id: Type.String(),
  status: JobStatus,
  /** Present for completed and failed; -1 when the sandbox could not start (cause in stderr). */
  exit_code: Type.Optional(Type.Integer()),
  stdout: Type.String(),
  stderr: Type.String(),
  started_at: Type.String(),
  ended_at: Type.String(),
  truncated: Type.Object({ stdout: Type.Boolean(), stderr: Type.Boolean() }),
  /** Which node ran it (extension; lets the orchestrator check it talked to the right one). */
  node_slug: Type.Optional(Type.String()),
});
export type JobRunResult = Static<typeof JobRunResult>;

/**
 * jobs:run as a stream: asked with `Accept: application/x-ndjson`, the node answers 200
 * `application/x-ndjson` at once, one JSON object per line: the job's output lines with
 * seq > `log_after` (the kept ones, then live ones as the sandbox writes them), a heartbeat
 * after every JOB_STREAM_HEARTBEAT_MS of silence, and last the result, after which the body
 * ends. Seq is dense per job from 1; a jump means the node dropped old lines to bound its
 * memory. A refused request still answers its problem document and status, before any line.
 */
export const JOB_STREAM_CONTENT_TYPE = 'application/x-ndjson';
export const JOB_STREAM_HEARTBEAT_MS = 15_000;

export const LogStream = Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]);
export type LogStream = Static<typeof LogStream>;

/** One line of a sandbox's output, without its newline (CRLF counts as one); long lines come in pieces of at most 16 KiB. */
export const JobLogEntry = Type.Object({ type: Type.Literal('log'), seq: Type.Integer({ minimum: 1 }), stream: LogStream, text: Type.String() });
export const JobHeartbeatEntry = Type.Object({ type: Type.Literal('heartbeat') });
export const JobResultEntry = Type.Object({
  type: Type.Literal('result'),
  result: JobRunResult,
  /** The seq of the job's last line (0 when it wrote none): a caller with fewer lines missed some. */
  last_seq: Type.Integer({ minimum: 0 }),
  /** Old lines the node no longer keeps (per-job bounds: about 10,000 lines or 4 MiB). */
  dropped: Type.Integer({ minimum: 0 }),
});
export const JobStreamEntry = Type.Union([JobLogEntry, JobHeartbeatEntry, JobResultEntry]);
export type JobStreamEntry = Static<typeof JobStreamEntry>;

/** A log line as the caller's onLog and the node's job table hold it. */
export interface LogLine {
  seq: number;
  stream: LogStream;
  text: string;
}

export const JobStopRequest = Type.Object(
  { version: Type.Literal(1), task_id: Type.Optional(Type.String({ pattern: JOB_ID_PATTERN })), job_id: Type.String({ pattern: JOB_ID_PATTERN }) },
  { additionalProperties: false },
);
export type JobStopRequest = Static<typeof JobStopRequest>;

export const JobStopResult = Type.Object({ version: Type.Literal(1), job_id: Type.String(), status: Type.Union([Type.Literal('stopping'), Type.Literal('not_running')]) });
export type JobStopResult = Static<typeof JobStopResult>;

/** Output caps per stream. */
export const OUTPUT_CAP_BYTES = 256 * 1024;

/**
 * Inference on a node: the orchestrator reaches the node's Ollama only
 * through the Worker API, with the node's bearer token. Bodies and answers are Ollama's own
 * (`/api/chat`, `/api/embed`, `/api/show`, `/api/pull`, `/api/delete`, `/api/tags`), passed through unchanged and streamed
 * as NDJSON, so a chunk reaches the orchestrator as soon as Ollama produces it. Closing the
 * request aborts the generation on the node.
 */
export const INFERENCE_PATHS = {
  /** POST: an Ollama chat request; answer as Ollama gives it (NDJSON when `stream`). */
  chat: '/v1/worker/inference/chat',
  /** POST: an Ollama embed request (`{model, input}`); answer as Ollama gives it. */
  embed: '/v1/worker/inference/embed',
  /** POST `{model}`: what Ollama knows of a model (/api/show), among it its `capabilities`. */
  show: '/v1/worker/inference/show',
  /** POST `{model}`: pull a model; NDJSON progress as Ollama gives it. */
  pull: '/v1/worker/inference/pull',
  /** POST `{model}`: delete a model (200, or 404 when the node does not have it). */
  delete: '/v1/worker/inference/delete',
  /** GET: the models the node has (Ollama's /api/tags). */
  models: '/v1/worker/inference/models',
} as const;

/**
 * Freezing a running job (run commands `pause` / `resume`): `POST /v1/worker/jobs:pause` and
 * `jobs:resume` with `{version, job_id}`. A paused job's sandbox keeps its processes and memory
 * but none of them runs, and its timeout clock stands still. Both are idempotent: pausing a
 * paused job answers `paused`, resuming a running one answers `running`; `not_running` when the
 * job is not running on this node (not started, or already ended).
 */
export const JOB_CONTROL_PATHS = { pause: '/v1/worker/jobs:pause', resume: '/v1/worker/jobs:resume' } as const;

export const JobControlRequest = Type.Object(
  { version: Type.Literal(1), task_id: Type.Optional(Type.String({ pattern: JOB_ID_PATTERN })), job_id: Type.String({ pattern: JOB_ID_PATTERN }) },
  { additionalProperties: false },
);
export type JobControlRequest = Static<typeof JobControlRequest>;

export const JobControlResult = Type.Object({
  version: Type.Literal(1),
  job_id: Type.String(),
  status: Type.Union([Type.Literal('paused'), Type.Literal('running'), Type.Literal('not_running')]),
});
export type JobControlResult = Static<typeof JobControlResult>;

/**
 * Background processes inside a running job's sandbox (a `docker exec` in its container). They
 * end with the sandbox at the latest. `process_id` is the idempotency key of start: a node starts
 * a process id at most once and answers a repeat with its state. A start for a job this node does
 * not run (or whose container is not running) answers 409; an unknown process id 404.
 */
export const PROCESS_PATHS = {
  start: '/v1/worker/processes:start',
  /** Long-poll: answers at once when the process has ended, else after at most `wait_ms`. */
  status: '/v1/worker/processes:status',
  /** SIGTERM to the process group, SIGKILL after a grace; answers the state after that. */
  terminate: '/v1/worker/processes:terminate',
} as const;

/** Most processes one job's sandbox runs at once; more are refused with 429. */
export const MAX_PROCESSES_PER_JOB = 16;
/** Longest a status call may wait for the process to end. */
export const MAX_PROCESS_WAIT_MS = 30_000;

export const ProcessStartRequest = Type.Object(
  {
    version: Type.Literal(1),
    job_id: Type.String({ pattern: JOB_ID_PATTERN }),
    process_id: Type.String({ pattern: JOB_ID_PATTERN }),
    command: Type.Array(Type.String({ maxLength: 100_000 }), { minItems: 1, maxItems: 64 }),
    env: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' }), Type.String({ maxLength: 100_000 }), { maxProperties: 64, additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type ProcessStartRequest = Static<typeof ProcessStartRequest>;

export const ProcessStatusRequest = Type.Object(
  { version: Type.Literal(1), process_id: Type.String({ pattern: JOB_ID_PATTERN }), wait_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_PROCESS_WAIT_MS })) },
  { additionalProperties: false },
);
export type ProcessStatusRequest = Static<typeof ProcessStatusRequest>;

export const ProcessTerminateRequest = Type.Object({ version: Type.Literal(1), process_id: Type.String({ pattern: JOB_ID_PATTERN }) }, { additionalProperties: false });
export type ProcessTerminateRequest = Static<typeof ProcessTerminateRequest>;

export const ProcessStatus = Type.Union([Type.Literal('running'), Type.Literal('exited'), Type.Literal('terminated'), Type.Literal('failed')]);
export type ProcessStatus = Static<typeof ProcessStatus>;

/** A process as the node knows it, with its output so far (capped at OUTPUT_CAP_BYTES per stream). */
export const ProcessState = Type.Object({
  version: Type.Literal(1),
  process_id: Type.String(),
  job_id: Type.String(),
  status: ProcessStatus,
  /** Once ended, when the engine reports one (a process killed with its sandbox may have none). */
  exit_code: Type.Optional(Type.Integer()),
  /** Why a process ended other than by itself: terminated on request, its sandbox ended, it could not start. */
  reason: Type.Optional(Type.String()),
  started_at: Type.String(),
  ended_at: Type.Optional(Type.String()),
  stdout: Type.String(),
  stderr: Type.String(),
  truncated: Type.Object({ stdout: Type.Boolean(), stderr: Type.Boolean() }),
});
export type ProcessState = Static<typeof ProcessState>;
