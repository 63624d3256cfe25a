import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { dataFiles } from '../config/config';
import { describeDbTarget } from '../db';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { errors } from '../http/schemas';
import { HttpProblem } from '../http/problem';
import type { RouteDeps } from '../routes';
import type { LanSharing } from '../system/lan-sharing';
import { LanSharingStatus } from '../system/routes';

/** Paths the console never answers: the API, health, and the API docs. */
const NOT_CONSOLE = /^\/(v1|healthz|readyz|docs)(\/|$)/;

/**
 * The console's own CSP, stricter than the API's: no inline styles either (React sets styles
 * through the DOM, which CSP allows), no eval, nothing but this origin.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Where `npm run build` put the console, from the source tree (tests) or the bundle (out/main). */
export function consoleDir(): string | undefined {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const candidates = [process.env.CYNODE_CONSOLE_DIR, resolve(here, '../renderer'), resolve(here, '../../renderer'), resolve(here, '../../out/renderer')];
  return candidates.find((dir): dir is string => !!dir && existsSync(join(dir, 'index.html')));
}

/**
 * Serves the built console at `/` (same origin as the API, so it needs no CORS), with the
 * single-page-app fallback: any other GET that is not the API answers index.html and the
 * console's router takes it from there. Also `GET /v1/system/info` for its settings page.
 */
export async function consoleRoutes(app: HttpServer, deps: RouteDeps, opts: { version: string; lanSharing: LanSharing; root?: string }): Promise<void> {
  systemInfoRoute(app, deps, opts.version, opts.lanSharing);
  const root = opts.root ?? consoleDir();
  if (!root) {
    // A browser asking for the console of a checkout that was never built learns why.
    app.addHook('onRequest', async (request, reply) => {
      if (request.routeOptions.url || request.method !== 'GET' || NOT_CONSOLE.test(request.url) || !/text\/html/.test(request.headers.accept ?? '')) return;
      return reply.code(503).type('text/plain; charset=utf-8').send('The console is not built: run `npm run build` (or `npm start`, which builds first).\n');
    });
    return;
  }
  // Read per request (a small file the OS caches): a rebuild under a running server stays consistent.
  const sendIndex = async (reply: FastifyReply) => {
    const indexHtml = await readFile(join(root, 'index.html'));
    return reply.code(200).header('content-security-policy', CONSOLE_CSP).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(indexHtml);
  };

  // Only the reply decorator: routes are ours, so they can opt out of authentication.
  await app.register(fastifyStatic, { root, serve: false });
  // Content-hashed bundles: cached for good. Everything else at the top level: revalidated.
  app.get('/assets/*', { config: { auth: 'none' }, schema: { hide: true } }, (request, reply) => {
    const file = (request.params as { '*': string })['*'];
    // A stale page asking for a bundle of an older build: a plain 404 (not the 405 the
    // gateway's not-found handler would infer from this route's methods).
    if (!/^[\w.-]+$/.test(file) || !existsSync(join(root, 'assets', file))) throw new HttpProblem(404, 'No such console file');
    return reply.sendFile(join('assets', file), { maxAge: 31_536_000_000, immutable: true });
  });
  // The page itself, `/` included: a GET nothing else matched, outside the API, from a browser
  // (a navigation asks for text/html). Anything else keeps the API's 404 problem document, so
  // scripts and probes see the same answers as before the console existed.
  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.url || (request.method !== 'GET' && request.method !== 'HEAD')) return;
    const path = request.url.split('?')[0] ?? '/';
    if (NOT_CONSOLE.test(path) || path.startsWith('/assets/')) return;
    if (/\.[a-z0-9]{1,8}$/i.test(path)) {
      // A top-level file of the build (favicon): served if it exists, else the usual 404.
      const name = path.slice(1);
      if (!name.includes('/') && existsSync(join(root, name))) return reply.sendFile(name, { maxAge: 3_600_000 });
      return;
    }
    if (!/text\/html/.test(request.headers.accept ?? '')) return;
    return sendIndex(reply);
  });
}

const SystemInfo = Type.Object({
  version: Type.String(),
  database: Type.Object({ kind: Type.Union([Type.Literal('pglite'), Type.Literal('postgres')]), description: Type.String() }),
  data_dir: Type.String(),
  gateway: Type.Object({
    bind_host: Type.String(),
    port: Type.Integer(),
    shared_on_lan: Type.Boolean({ description: 'LAN clients can reach the gateway (the LAN sharing setting, or a non-loopback CYNODE_HOST)' }),
    lan_urls: Type.Array(Type.String(), { description: 'The URLs LAN browsers and OpenAI clients use (empty when not shared)' }),
    local_url: Type.String(),
  }),
  lan_sharing: LanSharingStatus,
  embedded_node: Type.Boolean(),
  initial_admin_password_file: Type.Boolean({ description: 'The generated first-run password file still exists in the data directory' }),
});

/** Read-only facts for the console's settings page (who may read settings: admins, operators). */
function systemInfoRoute(app: HttpServer, { authz, config }: RouteDeps, version: string, lanSharing: LanSharing): void {
  app.get(
    '/v1/system/info',
    { schema: { tags: ['system'], summary: 'Where this installation keeps its data and how LAN clients reach it', response: { 200: SystemInfo, ...errors(401, 403) } } },
    async (request) => {
      await authz.require(request.principal!, 'settings.read', requestContext(request), { resourceType: 'settings' });
      const port = (app.server.address() as AddressInfo | null)?.port ?? config.gatewayPort;
      const host = config.host;
      const lan = lanSharing.status();
      const wildcard = host === '0.0.0.0' || host === '::' || host === '';
      const local = wildcard || host === 'localhost' ? '127.0.0.1' : host;
      return {
        version,
        database: config.databaseUrl
          ? { kind: 'postgres' as const, description: describeDbTarget({ kind: 'postgres', url: config.databaseUrl }) }
          : { kind: 'pglite' as const, description: describeDbTarget({ kind: 'pglite', dataDir: dataFiles.pglite(config.dataDir) }) },
        data_dir: config.dataDir,
        gateway: { bind_host: host, port, shared_on_lan: lan.enabled, lan_urls: lan.urls, local_url: `http://${local.includes(':') ? `[${local}]` : local}:${port}` },
        lan_sharing: lan,
        embedded_node: config.embeddedNode,
        initial_admin_password_file: existsSync(dataFiles.initialAdminPassword(config.dataDir)),
      };
    },
  );
}
