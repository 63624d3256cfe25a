/**
 * What the Worker API needs from a sandbox runtime. The one implementation drives Docker or
 * Podman through dockerode (docker-runner.ts); the interface keeps the Worker API testable on
 * its own terms and the runtime swappable.
 */
export interface SandboxRunSpec {
  taskId: string;
  jobId: string;
  image: string;
  command: string[];
  /** Caller's variables; CYNODE_TASK_ID, CYNODE_JOB_ID and CYNODE_WORKSPACE_DIR always win. */
  env: Record<string, string>;
  timeoutSeconds: number;
  /** Files for the read-only /job directory. */
  files: Record<string, string>;
  /**
   * Give the job its node's model through an inference proxy on a Unix socket mounted into the
   * sandbox (INFERENCE_PROXY_URL, INFERENCE_PROXY_TOKEN); the sandbox keeps no network.
   */
  useInference?: boolean;
}

/** A running inference proxy for one job (node-manager/inference/sandbox-proxy.ts). */
export interface InferenceProxyHandle {
  close(): Promise<void>;
}

/** Starts a job's inference proxy listening on socketPath, accepting only `token`. */
export type InferenceProxyFactory = (socketPath: string, token: string) => Promise<InferenceProxyHandle>;

export interface SandboxOutcome {
  status: 'completed' | 'failed' | 'timeout' | 'canceled';
  exitCode?: number;
  stdout: string;
  stderr: string;
  truncated: { stdout: boolean; stderr: boolean };
  startedAt: Date;
  endedAt: Date;
}

export interface SandboxLimits {
  memoryMb: number;
  pids: number;
  /** CPU cores (fractional allowed). */
  cpus: number;
}

export interface SandboxRuntimeInfo {
  runtime: 'docker' | 'podman';
  version: string;
  rootless: boolean;
}

export interface SandboxRunner {
  /** Can this node run sandboxes now? null when it can, else why not (for /readyz and reports). */
  check(): Promise<string | null>;
  info(): Promise<SandboxRuntimeInfo | null>;
  /** Runs one job to its end; never throws for what happens inside the sandbox. */
  run(spec: SandboxRunSpec, onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void): Promise<SandboxOutcome>;
  /** Stops a running job (its run() resolves with status `canceled`); false when not running. */
  stop(jobId: string): Promise<boolean>;
  /**
   * Freezes a running job's sandbox (every process in it stops being scheduled; nothing is
   * lost) and stops its timeout clock; false when the job is not running here.
   */
  pause?(jobId: string): Promise<boolean>;
  /** Lets a paused job's sandbox run on, with the timeout it had left; false when not running here. */
  resume?(jobId: string): Promise<boolean>;
  /** Stops every running job (shutdown). */
  stopAll(): Promise<void>;
  /** Resolves once finished jobs' containers and directories are removed (they go after the answer). */
  settled(): Promise<void>;
  /** Removes containers a previous run of this node left behind (crash, kill -9). */
  reapOrphans(): Promise<number>;
}
