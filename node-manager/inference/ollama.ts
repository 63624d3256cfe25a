import { Ollama } from 'ollama';

/** What the node's Ollama says about itself right now. */
export interface InferenceStatus {
  running: boolean;
  version?: string;
  /** Installed model names, e.g. `llama3:8b` (Ollama's /api/tags). */
  models: string[];
  /** Why it is not running, for logs and acks. */
  error?: string;
}

/**
 * The node's view of an Ollama server through the official client. Every call has a short
 * deadline: probes run in the heartbeat and at startup, and an Ollama that does not answer
 * quickly counts as not running rather than stalling the node.
 */
export class OllamaBackend {
  private readonly client: Ollama;

  constructor(
    readonly url: string,
    private readonly timeoutMs = 2_000,
  ) {
    const deadline = this.timeoutMs;
    this.client = new Ollama({
      host: url,
      fetch: (input, init) => fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(deadline)]) : AbortSignal.timeout(deadline) }),
    });
  }

  /** Version and models: is there an Ollama at all, and what does it have. */
  async probe(): Promise<InferenceStatus> {
    try {
      const [version, list] = await Promise.all([this.client.version(), this.client.list()]);
      return { running: true, version: version.version, models: list.models.map((m) => m.name) };
    } catch (err) {
      return { running: false, models: [], error: describe(err) };
    }
  }

  /** Models only: one request, cheap enough for every heartbeat. */
  async models(): Promise<InferenceStatus> {
    try {
      const list = await this.client.list();
      return { running: true, models: list.models.map((m) => m.name) };
    } catch (err) {
      return { running: false, models: [], error: describe(err) };
    }
  }

  /** Polls until Ollama answers or the time is up (a started container needs a moment). */
  async waitUntilRunning(timeoutMs: number, intervalMs = 500): Promise<InferenceStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.probe();
      if (status.running || Date.now() >= deadline) return status;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}

function describe(err: unknown): string {
  const e = err as { cause?: { code?: string }; name?: string; message?: string };
  if (e?.name === 'TimeoutError') return 'no answer in time';
  return e?.cause?.code ?? e?.message ?? String(err);
}
