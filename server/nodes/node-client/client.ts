import type { Static, TSchema } from '@sinclair/typebox';
import {
  JOB_CONTROL_PATHS,
  JobControlResult,
  JobRunResult,
  JobStopResult,
  PROCESS_PATHS,
  ProcessState,
  type JobControlRequest,
  type JobRunRequest,
  type JobStopRequest,
  type ProcessStartRequest,
  type ProcessStatusRequest,
  type ProcessTerminateRequest,
} from '../../../node-manager/contract/worker-api';
import { deleteModel, embed, listModels, pullModel, showModel, type EmbedOutcome, type OllamaEmbedRequest, type OllamaEntry } from './models';
import { InferenceCalls, type ChatCallOptions, type ChatOutcome, type InProcessNode, type OllamaChatRequest } from './inference';
import { DEFAULT_STREAM_IDLE_MS, postWorker, type CallOptions, type NodeTarget } from './worker-calls';

export interface NodeClientOptions {
  /** How long a streamed jobs:run may stay silent (heartbeats count) before the call fails as transient. */
  streamIdleMs?: number;
}

type Short = { signal?: AbortSignal; timeoutMs?: number };

/**
 * The orchestrator's one client of a node's Worker API: jobs (run, stop, pause, resume), background
 * processes, and inference (chat). Dispatch, processes, commands and chat all call nodes through it.
 */
export class NodeClient {
  private readonly streamIdleMs: number;
  private readonly inference = new InferenceCalls();

  constructor(o: NodeClientOptions = {}) {
    this.streamIdleMs = o.streamIdleMs ?? DEFAULT_STREAM_IDLE_MS;
  }

  /**
   * Runs (or re-attaches to) a job; resolves with the node's result. With onLog the answer is
   * streamed; a re-attaching caller passes the last seq it has as body.log_after and gets each line once.
   */
  run(target: NodeTarget, body: JobRunRequest, opts: CallOptions): Promise<JobRunResult> {
    return this.post(target, '/v1/worker/jobs:run', body, JobRunResult, opts);
  }

  /** Asks the node to stop a job; the open jobs:run then answers `canceled`. */
  stop(target: NodeTarget, body: JobStopRequest, opts: Short = {}): Promise<JobStopResult> {
    return this.post(target, '/v1/worker/jobs:stop', body, JobStopResult, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 15_000 });
  }

  /** Freezes a running job's sandbox (its timeout clock stands still); `not_running` when it is not running there. */
  pause(target: NodeTarget, body: JobControlRequest, opts: Short = {}): Promise<JobControlResult> {
    return this.post(target, JOB_CONTROL_PATHS.pause, body, JobControlResult, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 15_000 });
  }

  /** Lets a paused job run on. */
  resume(target: NodeTarget, body: JobControlRequest, opts: Short = {}): Promise<JobControlResult> {
    return this.post(target, JOB_CONTROL_PATHS.resume, body, JobControlResult, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 15_000 });
  }

  /** Starts a background process in a running job's sandbox (409: the job runs no sandbox there). */
  startProcess(target: NodeTarget, body: ProcessStartRequest, opts: Short = {}): Promise<ProcessState> {
    return this.post(target, PROCESS_PATHS.start, body, ProcessState, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30_000 });
  }

  /** A process's state and output; with body.wait_ms, answered once it ends or after that long. */
  processStatus(target: NodeTarget, body: ProcessStatusRequest, opts: Short = {}): Promise<ProcessState> {
    return this.post(target, PROCESS_PATHS.status, body, ProcessState, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? (body.wait_ms ?? 0) + 15_000 });
  }

  /** Ends a process (SIGTERM, then SIGKILL after the node's grace) and answers its state after that. */
  terminateProcess(target: NodeTarget, body: ProcessTerminateRequest, opts: Short = {}): Promise<ProcessState> {
    return this.post(target, PROCESS_PATHS.terminate, body, ProcessState, { signal: opts.signal, timeoutMs: opts.timeoutMs ?? 30_000 });
  }

  /** A chat with the node's Ollama, streamed from the node; each content piece goes to onToken. */
  chat(target: NodeTarget, body: OllamaChatRequest, opts: ChatCallOptions): Promise<ChatOutcome> {
    return this.inference.chat(target, body, opts);
  }

  /** Embeddings from the node's Ollama, one per input. */
  embed(target: NodeTarget, body: OllamaEmbedRequest, signal: AbortSignal): Promise<EmbedOutcome> {
    return embed(target, body, signal);
  }

  /** A model's capabilities as the node's Ollama lists them (/api/show). */
  showModel(target: NodeTarget, model: string, signal: AbortSignal): Promise<{ capabilities: string[] }> {
    return showModel(target, model, signal);
  }

  /** Calls `node` in process from now on; the returned function stops that (the node is closing). */
  addInProcessNode(node: InProcessNode): () => void {
    return this.inference.addInProcessNode(node);
  }

  /** The models the node's Ollama has, as it lists them. */
  listModels(target: NodeTarget, signal: AbortSignal): Promise<OllamaEntry[]> {
    return listModels(target, signal);
  }

  /** Deletes a model on the node (NodeCallError with status 404 when it has none of that name). */
  deleteModel(target: NodeTarget, model: string, signal: AbortSignal): Promise<void> {
    return deleteModel(target, model, signal);
  }

  /** Starts pulling a model onto the node; its progress lines as Ollama gives them. */
  pullModel(target: NodeTarget, model: string, signal: AbortSignal): Promise<AsyncGenerator<OllamaEntry>> {
    return pullModel(target, model, signal);
  }

  /** Closes the keep-alive sockets of inference calls. */
  close(): void {
    this.inference.close();
  }

  private post<S extends TSchema>(target: NodeTarget, path: string, body: unknown, schema: S, opts: CallOptions): Promise<Static<S>> {
    return postWorker(target, path, body, schema, opts, this.streamIdleMs);
  }
}
