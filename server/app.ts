import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Type } from '@sinclair/typebox';
import { dataFiles, type ServerConfig } from './config/config';
import { describeDbTarget, migrate, openDb, type Db, type DbTarget } from './db';
import { createHttpServer, type HttpServer } from './http/server';
import { MasterKey } from './vault/master-key';
import { AccessTokens } from './auth/tokens';
import { LoginLimiter } from './auth/login-limiter';
import { AuthService } from './auth/service';
import { Authorizer } from './rbac/service';
import { firstRun, type FirstRunResult } from './bootstrap/first-run';
import { healthRoutes, type Readiness } from './health/routes';
import { authRoutes } from './auth/routes';
import { apiKeyRoutes } from './api-keys/routes';
import { userRoutes } from './users/routes';
import { groupRoutes } from './groups/routes';
import { projectRoutes } from './projects/routes';
import { rbacRoutes } from './rbac/routes';
import { auditRoutes } from './audit/routes';
import type { RouteDeps } from './routes';

export const VERSION = '0.1.0';

export interface Cynode {
  gatewayUrl: string;
  controlUrl: string;
  db: Db;
  database: string;
  firstRun: FirstRunResult;
  close(): Promise<void>;
}

/**
 * The composition root: opens the database, migrates it, runs first-run setup, and starts the
 * User API Gateway and the control plane. Everything is wired here and nowhere else.
 */
export async function startCynode(config: ServerConfig): Promise<Cynode> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const masterKey = config.masterKey ? MasterKey.fromBase64(config.masterKey) : await MasterKey.fromFile(dataFiles.masterKey(config.dataDir));

  const target: DbTarget = config.databaseUrl ? { kind: 'postgres', url: config.databaseUrl } : { kind: 'pglite', dataDir: dataFiles.pglite(config.dataDir) };
  const db = await openDb(target);
  const closers: Array<() => Promise<void>> = [() => db.close()];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  };

  try {
    await migrate(db);

    const auth = new AuthService(db, new AccessTokens(masterKey.derive('access-token-signing'), config.accessTokenTtlSeconds), new LoginLimiter(), config.refreshTokenTtlSeconds);
    const deps: RouteDeps = { db, authz: new Authorizer(db), config };
    // Until nodes serving inference exist, nothing can answer chat or prompt tasks.
    const readiness: Readiness = { notReadyReason: async () => 'no inference path available (no dispatchable nodes; no node serving inference has registered)' };

    const gateway = await buildGateway(config, deps, auth, readiness);
    closers.push(() => gateway.close());
    const control = await buildControlPlane(config, readiness);
    closers.push(() => control.close());

    await gateway.listen({ host: config.host, port: config.gatewayPort });
    await control.listen({ host: config.host, port: config.controlPort });
    // Only once both ports are ours: a start that fails (port in use) must not create the admin
    // and file its generated password without ever showing it; the next start would stay silent.
    const setup = await firstRun(db, { adminPassword: config.adminPassword, passwordFile: dataFiles.initialAdminPassword(config.dataDir) });

    return {
      gatewayUrl: urlOf(gateway, config.host),
      controlUrl: urlOf(control, config.host),
      db,
      database: describeDbTarget(target),
      firstRun: setup,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

async function buildGateway(config: ServerConfig, deps: RouteDeps, auth: AuthService, readiness: Readiness): Promise<HttpServer> {
  const app = await createHttpServer({
    name: 'gateway',
    logLevel: config.logLevel,
    maxBodyBytes: config.maxBodyBytes,
    maxConcurrentRequests: config.maxConcurrentRequests,
    allowedOrigins: config.allowedOrigins,
    authenticate: (request) => auth.authenticate(request.headers.authorization),
    openapi: { title: 'CyNode User API Gateway', version: VERSION, description: 'Tasks, runs, chat, nodes, users and audit of a CyNode installation.' },
  });
  healthRoutes(app, readiness);
  authRoutes(app, deps.db, auth);
  apiKeyRoutes(app, deps.db);
  userRoutes(app, deps);
  groupRoutes(app, deps);
  projectRoutes(app, deps);
  rbacRoutes(app, deps);
  auditRoutes(app, deps);
  app.get(
    '/v1/openapi.json',
    { schema: { tags: ['meta'], summary: 'This API as an OpenAPI 3.1 document', response: { 200: Type.Object({}, { additionalProperties: true }) } } },
    async () => app.swagger(),
  );
  return app;
}

/** Node-facing listener: registration, config and capability reports arrive here (node issue). */
async function buildControlPlane(config: ServerConfig, readiness: Readiness): Promise<HttpServer> {
  const app = await createHttpServer({
    name: 'control-plane',
    logLevel: config.logLevel,
    maxBodyBytes: config.maxBodyBytes,
    maxConcurrentRequests: config.maxConcurrentRequests,
    allowedOrigins: [],
    // Nodes authenticate with their own credentials; nothing user-facing is served here.
    authenticate: async () => null,
  });
  healthRoutes(app, readiness);
  return app;
}

function urlOf(app: HttpServer, host: string): string {
  const addr = app.server.address() as AddressInfo;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${addr.port}`;
}
