import { startNodeManager, type NodeManager, type NodeManagerOptions } from '../../node-manager/agent/node-manager';
import { SANDBOX_IMAGE, tempDir } from './docker';
import type { TestServer } from './harness';

/**
 * A real Node Manager (agent + Worker API + Docker runner) joined to a test server with its
 * join key, in a fresh state directory (returned, for the caller to remove).
 */
export async function startTestNode(s: TestServer, name: string, extra: Partial<NodeManagerOptions> = {}): Promise<{ node: NodeManager; stateDir: string }> {
  const psk = (await s.api.call('/v1/nodes/join', { token: s.adminToken })).body.psk;
  const stateDir = await tempDir(`cynode-${name}-`);
  const node = await startNodeManager({
    controlUrl: s.cynode.controlUrl,
    psk,
    name,
    stateDir,
    workerHost: '127.0.0.1',
    workerPort: 0,
    sandboxImage: SANDBOX_IMAGE,
    maxConcurrency: 1,
    logLevel: 'silent',
    log: () => {},
    ...extra,
  });
  return { node, stateDir };
}
