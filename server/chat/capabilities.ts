import { LRUCache } from 'lru-cache';
import type { NodeClient, NodeTarget } from '../nodes/node-client';
import type { InferenceNode } from '../nodes/queries';
import { HttpProblem } from '../http/problem';
import type { Capability } from './openai-features';

/** A model's capabilities are asked again after this long, in case it was replaced under its name. */
const KEEP_MS = 5 * 60_000;
const ASK_TIMEOUT_MS = 10_000;

/** OpenAI-shaped (code) and a problem type that names the case, for clients of either shape. */
const capabilityProblem = (model: string, missing: Capability) =>
  new HttpProblem(400, `The model "${model.slice(0, 200)}" cannot do ${missing === 'embedding' ? 'embeddings' : missing} (its node's Ollama does not list the "${missing}" capability); choose a model that can`, {
    code: 'model_capability',
    type: 'urn:cynode:error:model_capability',
    param: missing,
  });

/**
 * What each node's Ollama says a model can do (/api/show `capabilities`), asked only for requests
 * that need a feature, and kept per node, model and the node's model list (a changed list asks
 * again), for a few minutes. A node that cannot answer is not assumed able: fail closed.
 */
export class ModelCapabilities {
  private readonly known = new LRUCache<string, string[]>({ max: 10_000, ttl: KEEP_MS });

  constructor(
    private readonly client: NodeClient,
    private readonly target: (node: InferenceNode) => Promise<NodeTarget>,
  ) {}

  /** The candidates whose model has every capability needed; 400 when none has, 502 when none could say. */
  async able(candidates: InferenceNode[], model: string, needs: Capability[], signal: AbortSignal): Promise<InferenceNode[]> {
    if (needs.length === 0) return candidates;
    let failure: unknown;
    const answers = await Promise.all(
      candidates.map((n) =>
        this.of(n, model, signal).catch((err: unknown) => {
          failure ??= err;
          return null;
        }),
      ),
    );
    const able = candidates.filter((_, i) => answers[i] !== null && needs.every((c) => answers[i]!.includes(c)));
    if (able.length > 0) return able;
    const said = answers.filter((a): a is string[] => a !== null);
    if (said.length === 0) {
      const problem = new HttpProblem(502, `Could not learn what the model "${model.slice(0, 200)}" can do from its node; try again later`, { code: 'cynodeai_inference_failed' });
      // What the node said is for the admin's log (the routes log `cause`), not for the caller.
      problem.cause = failure;
      throw problem;
    }
    throw capabilityProblem(model, needs.find((c) => !said.some((a) => a.includes(c)))!);
  }

  private async of(node: InferenceNode, model: string, signal: AbortSignal): Promise<string[]> {
    const key = `${node.id}|${model}|${node.models.join(',')}`;
    const hit = this.known.get(key);
    if (hit) return hit;
    const target = await this.target(node);
    const { capabilities } = await this.client.showModel(target, model, AbortSignal.any([signal, AbortSignal.timeout(ASK_TIMEOUT_MS)]));
    this.known.set(key, capabilities);
    return capabilities;
  }
}
