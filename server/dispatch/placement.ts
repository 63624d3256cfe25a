import type { InferenceNode } from '../nodes/queries';
import type { NodeLoad, QueuedJob } from './store';

export const NO_INFERENCE_REASON =
  'No node serves inference yet: prompt tasks need a node running Ollama. Use input_mode "commands" or "script" to run shell commands.';

/**
 * The node for a prompt task: one serving inference that has the task's model (or any model when
 * the task names none), the desktop's own node first, then the least busy; a job is not sent back
 * to a node it was lost on. Otherwise the reason it cannot run.
 */
export function pickInferenceNode(nodes: InferenceNode[], job: QueuedJob): { node: InferenceNode } | { code: string; reason: string } {
  if (nodes.length === 0) return { code: 'no_inference_path', reason: NO_INFERENCE_REASON };
  const model = typeof job.payload.model === 'string' ? job.payload.model : undefined;
  const lost = lostOn(job);
  const having = nodes.filter((n) => (model ? n.models.includes(model) : n.models.length > 0));
  if (having.length === 0) {
    return model
      ? { code: 'model_not_found', reason: `No node serving inference has the model "${model.slice(0, 200)}"; GET /v1/models lists the models there are.` }
      : { code: 'no_inference_path', reason: 'No node serving inference has a model installed yet; pull one onto a node first.' };
  }
  const pool = having.filter((n) => !lost.has(n.id));
  const best = [...(pool.length > 0 ? pool : having)].sort(
    (a, b) => Number(!a.labels.includes('orchestrator_host')) - Number(!b.labels.includes('orchestrator_host')) || a.running - b.running || a.node_slug.localeCompare(b.node_slug),
  )[0]!;
  return { node: best };
}

/** The least loaded node with a free slot (lowest share of its capacity in use). */
export function leastLoaded(nodes: NodeLoad[]): NodeLoad | undefined {
  let best: NodeLoad | undefined;
  for (const n of nodes) {
    if (n.running >= n.max_concurrency) continue;
    if (!best || n.running / n.max_concurrency < best.running / best.max_concurrency || (n.running / n.max_concurrency === best.running / best.max_concurrency && n.running < best.running)) best = n;
  }
  return best;
}

/** Nodes on which this job was lost before. */
export function lostOn(job: QueuedJob): Set<string | null> {
  return new Set((Array.isArray(job.attempts_log) ? job.attempts_log : []).filter((e) => e.outcome === 'node_lost' || e.outcome === 'lease_expired').map((e) => e.node_id));
}
