import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { serve, type Served } from '../support/cli';

export interface ServedGateway {
  server: Served;
  /** The admin's access token. */
  token: string;
  /** The openai SDK on the gateway, as the admin. */
  client: OpenAI;
  close(): Promise<void>;
}

/**
 * `cynode serve` on a fresh data folder, its embedded node on the Ollama at `ollamaUrl`, the admin
 * signed in, once `/v1/models` lists `model` (the node has reported it).
 */
export async function servedGateway(name: string, ollamaUrl: string, model: string, env: Record<string, string> = {}): Promise<ServedGateway> {
  const password = 'bench-password-1';
  const dataDir = await mkdtemp(join(tmpdir(), `cynode-bench-${name}-`));
  const server = await serve({ CYNODE_DATA_DIR: dataDir, CYNODE_ADMIN_PASSWORD: password, OLLAMA_HOST: ollamaUrl, CYNODE_NODE_HEARTBEAT_SECONDS: '1', CYNODE_NODE_STALE_SECONDS: '10', ...env });
  const close = async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const login = await fetch(`${server.gatewayUrl}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ handle: 'admin', password }) });
    const token = ((await login.json()) as { access_token: string }).access_token;
    const client = new OpenAI({ baseURL: `${server.gatewayUrl}/v1`, apiKey: token, maxRetries: 0 });
    for (let i = 0; ; i++) {
      const models = await client.models.list().catch(() => null);
      if (models?.data.some((m) => m.id === model)) break;
      if (i > 150) throw new Error(`the embedded node never served ${model}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return { server, token, client, close };
  } catch (err) {
    await close();
    throw err;
  }
}
