import type { BootstrapPayload, CapabilityReport, ConfigAck, NodeConfig } from '../contract/control-plane';

/** The control plane answered 401: the join key was refused, or the node token expired. */
export class NotAuthorizedError extends Error {}

/** The control plane answered with something other than success. */
export class ControlPlaneError extends Error {
  constructor(
    readonly status: number,
    /** What the control plane said (its problem's detail). */
    readonly detail: string,
    url: string,
  ) {
    super(`${url}: ${status} ${detail}`);
  }
}

async function call<T>(url: string, init: RequestInit & { token?: string; timeoutMs?: number }): Promise<T | undefined> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(init.timeoutMs ?? 15_000) });
  const text = await res.text();
  if (res.status === 401) throw new NotAuthorizedError(`${url}: not authorized`);
  if (!res.ok) {
    let detail = text.slice(0, 300);
    try {
      detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
    } catch {
      // not a problem document
    }
    throw new ControlPlaneError(res.status, detail, url);
  }
  return text ? (JSON.parse(text) as T) : undefined;
}

/**
 * The node's side of the control plane. After registration it uses only the URLs the bootstrap
 * payload gave it (never hard-coded paths).
 */
export class ControlClient {
  private bootstrap: BootstrapPayload | undefined;

  constructor(private readonly controlUrl: string) {}

  get nodeId(): string | undefined {
    return this.bootstrap?.node_id;
  }

  /** With the join key and the node's own secret, which registering an existing node needs. */
  async register(psk: string, nodeSecret: string, capability: CapabilityReport): Promise<BootstrapPayload> {
    const url = new URL('/v1/nodes/register', this.controlUrl).toString();
    this.bootstrap = (await call<BootstrapPayload>(url, { method: 'POST', body: JSON.stringify({ psk, node_secret: nodeSecret, capability }) }))!;
    return this.bootstrap;
  }

  async fetchConfig(): Promise<NodeConfig> {
    const b = this.registered();
    return (await call<NodeConfig>(b.orchestrator.endpoints.node_config_url, { method: 'GET', token: b.auth.node_jwt }))!;
  }

  async ack(ack: ConfigAck): Promise<void> {
    const b = this.registered();
    await call(b.orchestrator.endpoints.node_config_url, { method: 'POST', token: b.auth.node_jwt, body: JSON.stringify(ack) });
  }

  async report(capability: CapabilityReport): Promise<void> {
    const b = this.registered();
    await call(b.orchestrator.endpoints.node_report_url, { method: 'POST', token: b.auth.node_jwt, body: JSON.stringify(capability) });
  }

  private registered(): BootstrapPayload {
    if (!this.bootstrap) throw new Error('the node has not registered yet');
    return this.bootstrap;
  }
}
