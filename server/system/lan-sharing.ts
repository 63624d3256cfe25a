import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import type { Db, Queryable } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { isLoopbackHost } from '../http/addresses';
import { conflict } from '../http/problem';
import { CONNECTIONS_CHECK_MS, type HttpServer } from '../http/server';

/** `system_settings` row: {"enabled": boolean}. */
export const LAN_SHARING_SETTING = 'lan_sharing';

export interface LanSharingStatus {
  /** LAN clients can reach the gateway (through this setting, or CYNODE_HOST). */
  enabled: boolean;
  /** What LAN browsers and OpenAI clients type (`http://<address>:<port>`); empty when off. */
  urls: string[];
  /** CYNODE_HOST (or --host) binds a non-loopback address: the setting cannot change anything. */
  managed_by_env: boolean;
}

/** How often, while sharing, addresses that appeared (DHCP, Wi-Fi) or went away are followed. */
const RESCAN_MS = 15_000;


const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
const hostInUrl = (address: string) => (address.includes(':') ? `[${address}]` : address);

/**
 * The addresses LAN clients can reach this machine at: every non-internal IPv4 and IPv6 address,
 * IPv4 first. IPv6 link-local addresses (fe80::/10) are left out: they need a zone id that
 * browsers cannot take in a URL.
 */
export function lanAddresses(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string[] {
  const all = Object.values(interfaces)
    .flat()
    .filter((a): a is NetworkInterfaceInfo => a !== undefined && !a.internal && !(a.family === 'IPv6' && /^fe[89ab]/i.test(a.address)));
  const unique = [...new Set(all.map((a) => a.address))];
  return [...unique.filter((a) => !a.includes(':')), ...unique.filter((a) => a.includes(':'))];
}

/**
 * "Share on LAN" without a restart. The gateway keeps its own listener (CYNODE_HOST, loopback by
 * default); while sharing is on, one more node:http server per LAN address of this machine
 * listens on the same port and hands every request to the handler Fastify installed on its own
 * server, so LAN requests run the whole Fastify lifecycle (origin check, concurrency cap,
 * authentication, rate limits, problem details) exactly as loopback ones do. Turning it off
 * closes those listeners and every connection they hold.
 *
 * The choice is stored in `system_settings` and applied when the gateway starts. A CYNODE_HOST
 * that is not loopback wins over it: the gateway is then shared (or not) by the environment.
 */
export class LanSharing {
  private gateway: HttpServer | undefined;
  private log: FastifyBaseLogger | undefined;
  private readonly servers = new Map<string, Server>();
  private enabled = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  /** Changes are applied one at a time (two admins flipping the switch at once). */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly host: string,
    private readonly interfaces: () => NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces,
  ) {}

  get managedByEnv(): boolean {
    return !isLoopbackHost(this.host);
  }

  /** The gateway whose handler the LAN listeners share (before it listens). */
  attach(gateway: HttpServer): void {
    this.gateway = gateway;
    this.log = gateway.log.child({ module: 'lan-sharing' });
  }

  /** Once the gateway listens: applies the stored setting. A failure is logged, never fatal. */
  async start(): Promise<void> {
    if (this.managedByEnv) return;
    const stored = await readSetting(this.db);
    if (!stored) return;
    await this.serialised(async () => {
      for (const f of await this.turnOn()) this.log?.warn(`LAN sharing: cannot listen on ${f.address}: ${f.reason}`);
    });
  }

  status(): LanSharingStatus {
    const port = this.port();
    if (this.managedByEnv) {
      const hosts = isWildcard(this.host) ? lanAddresses(this.interfaces()) : [this.host];
      return { enabled: true, urls: hosts.map((h) => `http://${hostInUrl(h)}:${port}`), managed_by_env: true };
    }
    return { enabled: this.enabled, urls: [...this.servers.keys()].map((h) => `http://${hostInUrl(h)}:${port}`), managed_by_env: false };
  }

  /** Browser origins of the pages this gateway serves on the LAN (for the origin allowlist). */
  origins(): string[] {
    return this.enabled || this.managedByEnv ? this.status().urls : [];
  }

  /** Turns sharing on or off at once, stores it, and audits the change. */
  async set(enabled: boolean, by: Principal, ctx: RequestContext): Promise<LanSharingStatus> {
    if (this.managedByEnv) {
      throw conflict(`LAN sharing is set by CYNODE_HOST=${this.host} (or --host); change that and restart, or unset it to use this switch`);
    }
    return this.serialised(async () => {
      const before = this.enabled;
      if (enabled) {
        const failures = await this.turnOn();
        if (lanAddresses(this.interfaces()).length > 0 && this.servers.size === 0) {
          await this.turnOff();
          throw conflict(`Cannot share on the LAN: ${failures.map((f) => `${f.address}: ${f.reason}`).join('; ')}`);
        }
        for (const f of failures) this.log?.warn(`LAN sharing: cannot listen on ${f.address}: ${f.reason}`);
      } else {
        await this.turnOff();
      }
      const status = this.status();
      try {
        await this.db.transaction(async (tx) => {
          await writeSetting(tx, enabled, by.userId);
          await appendAudit(
            tx,
            { category: 'admin', outcome: 'success', actorId: by.userId, actorHandle: by.handle, resourceType: 'system_setting', resourceId: LAN_SHARING_SETTING, scopeType: 'system', action: 'lan_sharing_changed', details: { enabled, was: before, urls: status.urls } },
            ctx,
          );
        });
      } catch (err) {
        // Not stored: put the listeners back as they were, so what runs matches what the next start does.
        await (before ? this.turnOn() : this.turnOff());
        throw err;
      }
      return status;
    });
  }

  /** With the gateway: the LAN listeners and their connections end. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopRescan();
    await this.serialised(() => this.closeAll());
  }

  /** Listens on the LAN addresses (those it can) and follows them; answers those it could not. */
  private async turnOn(): Promise<Array<{ address: string; reason: string }>> {
    const failures = await this.open();
    this.enabled = true;
    this.startRescan();
    return failures;
  }

  private async turnOff(): Promise<void> {
    this.enabled = false;
    this.stopRescan();
    await this.closeAll();
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  private port(): number {
    return (this.gateway?.server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Listens on every LAN address not listened on yet, closes those that went away. */
  private async open(): Promise<Array<{ address: string; reason: string }>> {
    const gateway = this.gateway;
    if (!gateway || this.closed) return [];
    const port = this.port();
    const wanted = lanAddresses(this.interfaces());
    await Promise.all([...this.servers.keys()].filter((a) => !wanted.includes(a)).map((a) => this.closeOne(a)));
    const failures: Array<{ address: string; reason: string }> = [];
    for (const address of wanted.filter((a) => !this.servers.has(a))) {
      const server = mirror(gateway.server);
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: address, port, exclusive: true }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        // A late error (none expected once listening) must not crash the process.
        server.on('error', (err) => this.log?.error({ err }, `LAN listener on ${address} failed`));
        this.servers.set(address, server);
        this.log?.info(`gateway shared on the LAN at http://${hostInUrl(address)}:${port}`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        failures.push({ address, reason: code === 'EADDRINUSE' ? `port ${port} is in use there by another process` : code === 'EADDRNOTAVAIL' ? 'the address is not ready' : (code ?? 'failed') });
      }
    }
    return failures;
  }

  private startRescan(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => {
      void this.serialised(async () => {
        if (!this.enabled) return;
        for (const f of await this.open()) this.log?.debug(`LAN sharing: cannot listen on ${f.address}: ${f.reason}`);
      });
    }, RESCAN_MS);
    this.timer.unref();
  }

  private stopRescan(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async closeAll(): Promise<void> {
    await Promise.all([...this.servers.keys()].map((a) => this.closeOne(a)));
  }

  /** Stops accepting, and ends every connection it holds, idle keep-alive and open streams alike. */
  private async closeOne(address: string): Promise<void> {
    const server = this.servers.get(address);
    if (!server) return;
    this.servers.delete(address);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    this.log?.info(`gateway no longer shared at ${address}`);
  }
}

/**
 * A server that behaves as the gateway's own: the handler Fastify installed ('request'), its
 * answers to unparseable requests ('clientError'), upgrades, and the same timeouts.
 */
function mirror(main: Server): Server {
  const server = createServer({ connectionsCheckingInterval: CONNECTIONS_CHECK_MS, headersTimeout: main.headersTimeout, requestTimeout: main.requestTimeout });
  for (const event of ['request', 'clientError', 'upgrade', 'checkContinue', 'checkExpectation'] as const) {
    for (const listener of main.listeners(event)) server.on(event, listener as (...args: unknown[]) => void);
  }
  server.keepAliveTimeout = main.keepAliveTimeout;
  server.headersTimeout = main.headersTimeout;
  server.requestTimeout = main.requestTimeout;
  server.timeout = main.timeout;
  if (main.maxRequestsPerSocket) server.maxRequestsPerSocket = main.maxRequestsPerSocket;
  server.maxHeadersCount = main.maxHeadersCount;
  return server;
}

async function readSetting(q: Queryable): Promise<boolean> {
  const rows = await q.query<{ value: { enabled?: unknown } }>('SELECT value FROM system_settings WHERE key = $1', [LAN_SHARING_SETTING]);
  return rows[0]?.value.enabled === true;
}

async function writeSetting(q: Queryable, enabled: boolean, by: string): Promise<void> {
  await q.query(
    `INSERT INTO system_settings (key, value, updated_by) VALUES ($1, $2::jsonb, $3)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = system_settings.version + 1, updated_at = now(), updated_by = EXCLUDED.updated_by`,
    [LAN_SHARING_SETTING, JSON.stringify({ enabled }), by],
  );
}
