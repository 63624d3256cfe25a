/**
 * An http-type connector operation through the gateway (auth, policy, credential open in the
 * executor, egress guard, operation record) beside the same request straight to the peer, a
 * local stand-in that answers after about 5 ms. Then policy decisions per second with 1,000 rules.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '../support/cli';
import { summarize } from './stats';

const SAMPLES = Number(process.env.BENCH_SAMPLES || 200);
const PEER_DELAY_MS = 5;
const ms = (n: number) => `${n.toFixed(2)} ms`;

function startPeer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    }, PEER_DELAY_MS);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) }),
    ),
  );
}

async function timed(n: number, one: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await one();
    out.push(performance.now() - t0);
  }
  return out;
}

export async function connectorsBench(): Promise<void> {
  const peer = await startPeer();
  const dataDir = await mkdtemp(join(tmpdir(), 'cynode-bench-connectors-'));
  const server = await serve({ CYNODE_DATA_DIR: dataDir, CYNODE_ADMIN_PASSWORD: 'bench-password-1', CYNODE_EMBEDDED_NODE: 'false', CYNODE_CONNECTOR_RATE_PER_MINUTE: '0' });
  try {
    const api = async (method: string, path: string, token?: string, body?: unknown) => {
      const res = await fetch(`${server.gatewayUrl}${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
      return text ? (JSON.parse(text) as Record<string, unknown>) : {};
    };
    const token = (await api('POST', '/v1/auth/login', undefined, { handle: 'admin', password: 'bench-password-1' })).access_token as string;
    await api('PUT', '/v1/connectors/egress-allow', token, { entries: ['127.0.0.1'] });
    const c = await api('POST', '/v1/connectors', token, { type: 'http', name: 'Bench peer', config: { base_url: `${peer.url}/api` } });
    await api('POST', `/v1/connectors/${c.id as string}/credentials`, token, { type: 'bearer_token', secret: { token: 'bench-peer-token' } });
    const viaGateway = () => api('POST', `/v1/connectors/${c.id as string}/operations/request`, token, { params: { method: 'GET', path: 'items' } }).then(() => undefined);
    const direct = () => fetch(`${peer.url}/api/items`, { headers: { authorization: 'Bearer bench-peer-token' } }).then((r) => r.text()).then(() => undefined);
    await timed(20, viaGateway);
    await timed(20, direct);
    // Alternated, so that a change in the machine's load during the run weighs on both sides alike.
    const gateway: number[] = [];
    const straight: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      gateway.push(...(await timed(1, viaGateway)));
      straight.push(...(await timed(1, direct)));
    }
    const g = summarize(gateway);
    const d = summarize(straight);
    console.log(`http connector operation, peer answers after ${PEER_DELAY_MS} ms, ${SAMPLES} sequential calls each, alternating`);
    console.log(`  direct   p50 ${ms(d.p50)}  p95 ${ms(d.p95)}  p99 ${ms(d.p99)}`);
    console.log(`  CyNode   p50 ${ms(g.p50)}  p95 ${ms(g.p95)}  p99 ${ms(g.p99)}`);
    console.log(`  ratio    p50 ${(g.p50 / d.p50).toFixed(2)}x  p95 ${(g.p95 / d.p95).toFixed(2)}x  p99 ${(g.p99 / d.p99).toFixed(2)}x  (target <= 1.5x)`);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    await peer.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  console.log('\npolicy decisions (1,000 rules):');
  await (await import('./policy')).policyBench();
}
