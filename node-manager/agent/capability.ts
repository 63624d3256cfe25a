import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { arch, cpus, hostname, platform, release, totalmem } from 'node:os';
import type { CapabilityReport } from '../contract/control-plane';
import type { InferenceStatus } from '../inference/ollama';
import type { SandboxRunner } from '../sandbox/runner';

/** The user's say on inference (CYNODE_INFERENCE_MODE); the one non-fact in the report. */
export type InferenceMode = 'allow' | 'disabled' | 'require';

export interface InferenceFacts {
  mode: InferenceMode;
  /** The node uses an Ollama it did not start (reported, so the orchestrator never asks it to start a second one). */
  existingService: boolean;
  /** The node could start its own Ollama: an engine that has the Ollama image. */
  canStart: boolean;
  status: InferenceStatus;
}

export interface CapabilityInputs {
  nodeSlug: string;
  displayName: string;
  labels: string[];
  workerBaseUrl: string;
  stateDir: string;
  maxConcurrency: number;
  runner: SandboxRunner;
  runningJobIds: () => string[];
  /** The node's Ollama right now (one cheap request); absent: the node has no inference at all. */
  inference?: () => Promise<InferenceFacts>;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

/** GPUs we can see without vendor tools: the device nodes their drivers create. */
function gpuPresent(): boolean {
  return ['/dev/nvidia0', '/dev/kfd'].some((p) => existsSync(p));
}

/**
 * node_capability_report_v1: facts only, gathered fresh each time. It doubles as the heartbeat,
 * so it must stay cheap: one engine ping, one statfs.
 */
export async function collectCapability(i: CapabilityInputs): Promise<CapabilityReport> {
  const [sandboxProblem, runtime, fs, inference] = await Promise.all([
    i.runner.check(),
    i.runner.info().catch(() => null),
    statfs(i.stateDir).catch(() => null),
    i.inference?.() ?? null,
  ]);
  const cpu = cpus();
  return {
    version: 1,
    reported_at: new Date().toISOString(),
    node: { node_slug: i.nodeSlug, name: i.displayName, labels: i.labels },
    platform: { os: platform(), arch: ARCH[arch()] ?? arch(), kernel_version: release() },
    compute: {
      cpu_cores: cpu.length,
      cpu_model: cpu[0]?.model?.trim(),
      ram_mb: Math.round(totalmem() / 2 ** 20),
      ...(fs ? { storage_free_mb: Math.round((fs.bavail * fs.bsize) / 2 ** 20) } : {}),
    },
    ...(runtime ? { container_runtime: { runtime: runtime.runtime, version: runtime.version, rootless_enabled: runtime.rootless } } : {}),
    gpu: { present: gpuPresent() },
    sandbox: { supported: sandboxProblem === null, max_concurrency: i.maxConcurrency, ...(sandboxProblem ? { reason: sandboxProblem } : {}) },
    inference: inference
      ? {
          // Honest: an Ollama to use, or an engine with the image to start one; a node with
          // neither cannot infer (images are never pulled behind the operator's back).
          supported: inference.existingService || inference.status.running || inference.canStart,
          mode: inference.mode,
          existing_service: inference.existingService,
          running: inference.status.running,
          available_models: inference.status.models,
        }
      : { supported: false, running: false, mode: 'allow' },
    worker_api: { base_url: i.workerBaseUrl },
    running_jobs: i.runningJobIds(),
  };
}

/** A node name that is a valid slug: from --name, else the host name plus a stable suffix. */
export function defaultNodeSlug(instanceId: string): string {
  const base = hostname().toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 50) || 'node';
  return `${base}-${instanceId.replace(/-/g, '').slice(0, 4)}`;
}
