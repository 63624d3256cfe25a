/**
 * The two HTTP listeners and what each serves: the User API Gateway (every route of people and
 * their integrations, /mcp, the console) and the control plane nodes talk to. startCynode
 * (server/app.ts) builds the services and hands them here (docs/architecture.md).
 */
import { machineNames } from './http/addresses';
import { type ServerConfig } from './config/config';
import { createHttpServer, type HttpServer } from './http/server';
import type { LiveStreams } from './http/live-streams';
import { HttpProblem } from './http/problem';
import type { AuthService } from './auth/service';
import type { Authorizer, RoleBindingService } from './rbac/service';
import type { ApiKeyService } from './api-keys/service';
import type { AuditService } from './audit/service';
import type { GroupService } from './groups/service';
import type { ProjectService } from './projects/service';
import type { SetupService } from './setup/service';
import type { UserService } from './users/service';
import type { TaskService } from './tasks/service';
import { healthRoutes, type Readiness } from './health/routes';
import { authRoutes } from './auth/routes';
import { apiKeyRoutes } from './api-keys/routes';
import { userRoutes } from './users/routes';
import { groupRoutes } from './groups/routes';
import { projectRoutes } from './projects/routes';
import { rbacRoutes } from './rbac/routes';
import { auditRoutes } from './audit/routes';
import type { NodeTokens } from './nodes/node-tokens';
import type { ControlPlaneService } from './nodes/control-service';
import { authenticateNode, controlPlaneRoutes } from './nodes/control-routes';
import { nodeAdminRoutes, type NodeAdminDeps } from './nodes/admin-routes';
import { taskRoutes } from './tasks/routes';
import type { ChatService } from './chat/service';
import type { ChatCompletions } from './chat/completion';
import { chatRoutes } from './chat/routes';
import type { PolicyService } from './policy/service';
import { policyRoutes } from './policy/routes';
import type { RunService } from './runs/service';
import { runRoutes } from './runs/routes';
import type { SessionService } from './sessions/service';
import { sessionRoutes } from './sessions/routes';
import type { CommandService } from './commands/service';
import { commandRoutes } from './commands/routes';
import type { TranscriptService } from './transcripts/service';
import { transcriptRoutes } from './transcripts/routes';
import type { RetentionService } from './retention/service';
import { RetentionJob } from './retention/service';
import { retentionRoutes } from './retention/routes';
import { consoleRoutes } from './console/routes';
import { setupRoutes } from './setup/routes';
import type { LanSharing } from './system/lan-sharing';
import { systemRoutes } from './system/routes';
import type { ConnectorService } from './connectors/service';
import type { ConnectorCredentialService } from './connectors/credentials';
import type { ConnectorOperationService } from './connectors/invocations';
import { connectorRoutes } from './connectors/routes';
import type { ConnectorSubscriptionService } from './connectors/subscriptions';
import { connectorSubscriptionRoutes } from './connectors/subscription-routes';
import { agentPrincipal } from './agents/authenticate';
import type { AgentTokenService } from './agents/service';
import type { RouteDeps } from './routes';
import { VERSION } from './version';

/** The services of users, their credentials and what they may do: the gateway's, and `cynode reset-password`'s. */
export interface IdentityServices {
  authz: Authorizer;
  apiKeys: ApiKeyService;
  users: UserService;
  groups: GroupService;
  projects: ProjectService;
  roleBindings: RoleBindingService;
  setup: SetupService;
  audit: AuditService;
}

/** The routes agent tokens are accepted at: /mcp, whose caller carries the agent (server/mcp/caller.ts), so every tool call is decided for its role too. */
const AGENT_ROUTES: ReadonlySet<string> = new Set(['/mcp']);

/** The routes that change sessions, users, keys, groups, projects or role bindings. */
const ACCESS_ROUTES = /^\/v1\/(users|api-keys|groups|projects|role-bindings|auth\/logout|setup)(\/|$)/;

/** What the gateway's routes serve: every service, built by startCynode. */
export interface GatewayServices {
  auth: AuthService;
  identity: IdentityServices;
  liveStreams: LiveStreams;
  readiness: Readiness;
  nodeAdmin: NodeAdminDeps;
  tasks: TaskService;
  chat: ChatService;
  completions: ChatCompletions;
  policy: PolicyService;
  runs: RunService;
  commands: CommandService;
  sessions: SessionService;
  agentTokens: AgentTokenService;
  transcripts: TranscriptService;
  retention: RetentionService;
  lanSharing: LanSharing;
  connectors: { instances: ConnectorService; credentials: ConnectorCredentialService; operations: ConnectorOperationService; subscriptions: ConnectorSubscriptionService };
}

export async function buildGateway(config: ServerConfig, started: () => boolean, deps: RouteDeps, services: GatewayServices): Promise<HttpServer> {
  const { auth, identity, liveStreams, readiness, nodeAdmin, chat, policy, runs, commands, retention, lanSharing } = services;
  const app = await createHttpServer({
    name: 'gateway',
    logLevel: config.logLevel,
    maxBodyBytes: config.maxBodyBytes,
    maxConcurrentRequests: config.maxConcurrentRequests,
    requestTimeoutSeconds: config.requestTimeoutSeconds,
    // CYNODE_ALLOWED_ORIGINS, and the pages this gateway serves on the LAN while it shares.
    allowedOrigins: () => [...config.allowedOrigins, ...lanSharing.origins()],
    allowedHosts: [...config.allowedHosts, ...machineNames()],
    started,
    authenticate: async (request) => {
      request.principal = (await auth.authenticate(request.headers.authorization)) ?? (await agentPrincipal(services.agentTokens, request, AGENT_ROUTES));
      // The challenge RFC 9110 asks of a 401; MCP clients read it to know a bearer token is wanted.
      if (!request.principal) throw new HttpProblem(401, 'Authentication required', {}, { 'www-authenticate': 'Bearer' });
    },
    openapi: { title: 'CyNode User API Gateway', version: VERSION, description: 'Tasks, runs, chat, nodes, users and audit of a CyNode installation.' },
  });
  // A change to who may do what, made through this gateway, holds from the caller's next request
  // on: the access memos are dropped before the answer leaves. access_changed drops them too, in
  // every gateway, but on PostgreSQL it may land after that next request.
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.method !== 'GET' && request.method !== 'HEAD' && reply.statusCode < 400 && ACCESS_ROUTES.test(request.routeOptions.url ?? '')) {
      auth.credentials.clear();
      chat.projects.clear();
      policy.accessChanged();
      void liveStreams.recheck();
    }
    return payload;
  });
  healthRoutes(app, readiness, started);
  authRoutes(app, auth);
  setupRoutes(app, identity.setup);
  apiKeyRoutes(app, identity.apiKeys);
  userRoutes(app, identity.users);
  groupRoutes(app, identity.groups);
  projectRoutes(app, identity.projects);
  rbacRoutes(app, identity.roleBindings);
  auditRoutes(app, identity.audit);
  policyRoutes(app, policy);
  nodeAdminRoutes(app, deps, nodeAdmin);
  taskRoutes(app, services.tasks, runs);
  runRoutes(app, runs);
  sessionRoutes(app, services.sessions);
  commandRoutes(app, commands);
  transcriptRoutes(app, services.transcripts);
  retentionRoutes(app, retention);
  connectorRoutes(app, services.connectors.instances, services.connectors.credentials, services.connectors.operations);
  connectorSubscriptionRoutes(app, services.connectors.subscriptions);
  // Purges from this process; closing the gateway (before the database) waits for one in flight.
  const retentionJob = new RetentionJob(retention, config.retentionIntervalSeconds, (err) => app.log.error({ err }, 'retention purge failed; the next one retries'));
  retentionJob.start();
  app.addHook('onClose', () => retentionJob.stop());
  chatRoutes(app, chat, services.completions, { keepaliveSeconds: config.chatKeepaliveSeconds });
  lanSharing.attach(app);
  systemRoutes(app, deps, lanSharing);
  await consoleRoutes(app, deps, { version: VERSION, lanSharing });
  return app;
}

/** Node-facing listener: registration, config and capability reports arrive here. */
export async function buildControlPlane(config: ServerConfig, started: () => boolean, readiness: Readiness, controlPlane: ControlPlaneService, nodeTokens: NodeTokens): Promise<HttpServer> {
  const app = await createHttpServer({
    name: 'control-plane',
    logLevel: config.logLevel,
    maxBodyBytes: config.maxBodyBytes,
    maxConcurrentRequests: config.maxConcurrentRequests,
    requestTimeoutSeconds: config.requestTimeoutSeconds,
    allowedOrigins: [],
    // Remote nodes join by this machine's LAN address (the one a request arrives on), its name, or a configured one.
    allowedHosts: [...config.allowedHosts, ...machineNames()],
    started,
    // Nodes authenticate with their own credentials; nothing user-facing is served here.
    authenticate: authenticateNode(nodeTokens),
    openapi: { title: 'CyNode control plane', version: VERSION, description: 'Where nodes register, fetch their configuration and report their capabilities.' },
  });
  healthRoutes(app, readiness, started);
  controlPlaneRoutes(app, controlPlane);
  return app;
}

/** Says which listener could not bind, and how to move it, instead of Node's bare EADDRINUSE. */
export async function listen(app: HttpServer, what: string, variable: string, host: string, port: number): Promise<void> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES' && e.code !== 'EADDRNOTAVAIL') throw err;
    const why = e.code === 'EADDRINUSE' ? 'is already in use by another process' : e.code === 'EACCES' ? 'needs privileges this process lacks' : 'is not an address of this machine';
    throw Object.assign(new Error(`the ${what} cannot listen on ${host}:${port}: that address ${why} (set ${variable} or CYNODE_HOST)`), { code: 'CYNODE_LISTEN' });
  }
}
