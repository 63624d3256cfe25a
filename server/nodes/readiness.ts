import type { Queryable } from '../db';
import type { Readiness } from '../health/routes';
import { inferenceCounts } from './store';

/** Every not-ready answer says this, so monitors can match one phrase whatever is missing. */
export const NO_INFERENCE_PATH = 'no inference path available';

/**
 * The orchestrator is ready when it can answer a prompt: at least one
 * reachable node whose Ollama runs and has a model (sandboxes not required). Read from the nodes' latest reports, so
 * it is the same with or without an embedded node, and on every gateway sharing the database.
 * Otherwise the answer names the first missing piece and what fixes it.
 */
export class InferenceReadiness implements Readiness {
  constructor(private readonly db: Queryable) {}

  async notReadyReason(): Promise<string | null> {
    const c = await inferenceCounts(this.db);
    if (c.reachable === 0) return `${NO_INFERENCE_PATH} (no dispatchable nodes)`;
    if (c.serving === 0) return `${NO_INFERENCE_PATH} (no node serves inference: start Ollama on a node, or set OLLAMA_HOST)`;
    if (c.withModels === 0) return `${NO_INFERENCE_PATH} (inference is running but no model is installed: pull one, e.g. POST /v1/nodes/{id}/models)`;
    return null;
  }
}
