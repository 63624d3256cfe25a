import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { dataFiles, type ServerConfig } from './config/config';
import type { Db } from './db';
import { openDatabase } from './bootstrap/database';
import { type HttpServer } from './http/server';
import { listenerUrl, loopbackOf } from './http/addresses';
import { LiveStreams } from './http/live-streams';
import { MasterKey } from './vault/master-key';
import { AccessTokens } from './auth/tokens';
import { LoginLimiter } from './auth/login-limiter';
import { AuthService, type TokenPair } from './auth/service';
import { Authorizer, RoleBindingService } from './rbac/service';
import { firstRun, type FirstRunResult } from './bootstrap/first-run';
import { ApiKeyService } from './api-keys/service';
import { AuditService } from './audit/service';
import { GroupService } from './groups/service';
import { ProjectService } from './projects/service';
import { findProject } from './projects/store';
import { SetupService } from './setup/service';
import { UserService } from './users/service';
import { TaskService } from './tasks/service';
import { type Readiness } from './health/routes';
import { Vault } from './vault/envelope';
import { JoinPsk, advertisedUrl } from './nodes/psk';
import { NodeTokens } from './nodes/node-tokens';
import { ControlPlaneService } from './nodes/control-service';
import { NodeAdminService } from './nodes/admin-service';
import { type NodeAdminDeps } from './nodes/admin-routes';
import { NodeLiveness } from './nodes/liveness';
import { workerTokenContext, workerTokenFor } from './nodes/store';
import { workerApiTarget } from './nodes/queries';
import { InferenceReadiness } from './nodes/readiness';
import { NodeModelService } from './nodes/model-service';
import { NodeClient } from './nodes/node-client';
import { Dispatcher } from './dispatch/dispatcher';
import { ChatService } from './chat/service';
import { ChatCompletions } from './chat/completion';
import { dropOnChange } from './db/memo';
import { PolicyService } from './policy/service';
import { Ledger } from './runs/ledger';
import { RunEventHub } from './runs/hub';
import { RunService } from './runs/service';
import { ProcessService } from './processes/service';
import { processRoutes } from './processes/routes';
import { SessionService } from './sessions/service';
import { CommandService } from './commands/service';
import { CommandRunner } from './commands/runner';
import { NodeSandboxControl } from './commands/sandbox-control';
import { TranscriptService } from './transcripts/service';
import { RetentionService } from './retention/service';
import { reconcileFirstRunPassword } from './users/first-run-password';
import { LanSharing } from './system/lan-sharing';
import { ConnectorService } from './connectors/service';
import { ConnectorCredentialService } from './connectors/credentials';
import { ConnectorOperationService } from './connectors/invocations';
import { ConnectorHealth } from './connectors/health';
import { RateLimiter } from './connectors/breaker';
import { connectorPolicyOf } from './connectors/policy';
import { ConnectorSubscriptionService } from './connectors/subscriptions';
import { EventDelivery, type EventInvoker } from './connectors/event-delivery';
import { AgentTokens } from './agents/tokens';
import { AgentTokenService } from './agents/service';
import { agentTokenRoutes } from './agents/routes';
import type { RouteDeps } from './routes';
import { startNodeManager } from '../node-manager/agent/node-manager';
import { ProcessConnectorExecutor } from './connectors/executor/client';
import { McpService } from './mcp/service';
import { mcpRoutes } from './mcp/routes';
import { toolCatalog } from './mcp/tools/index';
import { PreferenceService } from './preferences/service';
import { preferenceRoutes } from './preferences/routes';
import { ApprovalService, mountPmAgent } from './agent/mount';
import { VERSION } from './version';
import { buildControlPlane, buildGateway, listen, type IdentityServices } from './gateway';

export { VERSION } from './version';
export type { IdentityServices } from './gateway';

/** `firstRunPasswordFile`: removed once a password change replaces the generated first-run password. */
export function identityServices(db: Db, firstRunPasswordFile: string): IdentityServices {
  // Given the lookup, rbac guards projects without importing the projects domain (which imports rbac).
  const authz = new Authorizer(db, (ref) => findProject(db, ref));
  const apiKeys = new ApiKeyService(db);
  const users = new UserService(db, authz, apiKeys, firstRunPasswordFile);
  return {
    authz,
    apiKeys,
    users,
    groups: new GroupService(db, authz),
    projects: new ProjectService(db, authz),
    roleBindings: new RoleBindingService(db, authz),
    setup: new SetupService(db, users),
    audit: new AuditService(db, authz),
  };
}

export interface Cynode {
  gatewayUrl: string;
  controlUrl: string;
  db: Db;
  database: string;
  firstRun: FirstRunResult;
  /**
   * Desktop only: a session for the local owner (`admin` unless named) without a password. The
   * Electron main process calls it and hands the access token to its own window; no route reaches it.
   */
  localSession(handle?: string): Promise<TokenPair & { user_id: string; handle: string }>;
  /** The connector executor process: seals credentials, runs operations (docs/decisions/0004-vault-format.md). */
  connectorExecutor: ProcessConnectorExecutor;
  /** Agent-scoped tokens: minted for the orchestrator's agents, verified at /mcp. */
  agentTokens: AgentTokenService;
  close(): Promise<void>;
}

/**
 * The composition root: opens the database, migrates it, runs first-run setup, and starts the
 * User API Gateway and the control plane. Everything is wired here and nowhere else.
 */
export async function startCynode(config: ServerConfig): Promise<Cynode> {
  const database = await openDatabase(config);
  const { db } = database;
  const closers: Array<() => Promise<void>> = [() => database.close()];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  };

  // Until every part below runs (the first-run admin, the dispatcher, the command runner, the
  // ledger hub), both servers answer 503 to everything but health, and /healthz says `starting`.
  let started = false;
  const isStarted = () => started;

  try {
    const masterKey = config.masterKey ? MasterKey.fromBase64(config.masterKey) : await MasterKey.fromFile(dataFiles.masterKey(config.dataDir));
    const identity = identityServices(db, dataFiles.initialAdminPassword(config.dataDir));
    const auth = new AuthService(db, new AccessTokens(masterKey.derive('access-token-signing'), config.accessTokenTtlSeconds), new LoginLimiter(), config.refreshTokenTtlSeconds, identity.apiKeys);
    const deps: RouteDeps = { db, authz: identity.authz, config };
    // Ready once a dispatchable node serves inference with a model (from the nodes' reports).
    const readiness: Readiness = new InferenceReadiness(db);

    // Every call to a node's Worker API (jobs, processes, chat, models), over keep-alive connections; closed last.
    const nodeClient = new NodeClient();
    closers.push(async () => nodeClient.close());
    // Nodes: secrets at rest are sealed by the vault; the join key exists from the first start.
    const vault = new Vault(masterKey);
    const joinPsk = new JoinPsk(db, vault, config.nodePsk);
    await joinPsk.ensure();
    const nodeTokens = new NodeTokens(masterKey.derive('node-token-signing'));
    // Connectors: the executor process alone opens their credentials. It starts while the rest
    // does, and stops after the gateway (closers run in reverse): calls in flight finish first.
    const connectorExecutor = new ProcessConnectorExecutor({ db, masterKey, logLevel: config.logLevel });
    closers.push(() => connectorExecutor.close());
    const executorStarted = connectorExecutor.ready().then(() => undefined, (err: unknown) => err);
    const controlPlane = new ControlPlaneService(db, vault, nodeTokens, joinPsk, { heartbeatSeconds: config.nodeHeartbeatSeconds, ollamaImage: config.ollamaImage });
    // The real port is known only once the control plane listens (port 0 in tests).
    let controlPort = config.controlPort;
    const nodeAdmin: NodeAdminDeps = { admin: new NodeAdminService(db), psk: joinPsk, controlPlaneUrl: () => advertisedUrl(config.host, controlPort), models: new NodeModelService(db, vault, nodeClient) };

    // Runs: the event ledger, and one hub per process fanning new events out to live streams.
    const runHub = new RunEventHub(db);
    closers.push(() => runHub.stop());
    // Live streams end when their caller signs out, is disabled, or loses access: checked again on
    // every access change, from any gateway.
    const liveStreams = new LiveStreams({ perUser: config.maxStreamsPerUser, perAddress: config.maxStreamsPerAddress, credentialValid: (p) => auth.stillValid(p) });
    const ledger = new Ledger(db);

    // Events out through connectors, run as their subscribers by the operation service (built below).
    // Closed after the dispatcher stops telling of tasks and before the executor (closers run in reverse).
    const eventInvoker: { to?: EventInvoker } = {};
    const events = new EventDelivery(db, deps.authz, { invoke: (a, id, r) => eventInvoker.to!.invoke(a, id, r) });
    closers.push(() => events.close());

    // Tasks: queued in the database; one dispatcher per process leases their jobs to nodes.
    // Inference on nodes (chat and prompt tasks), over keep-alive connections; closed last.
    const dispatcher = new Dispatcher({
      db,
      nodes: { workerToken: (id) => workerTokenFor(db, vault, id) },
      noNodeGraceSeconds: config.noNodeGraceSeconds,
      client: nodeClient,
      inference: nodeClient,
      ledger,
      onTaskClosed: (t) => events.taskClosed(t),
    });
    // Stopped before the database closes (closers run in reverse); the jobs it waits on stay running on their nodes.
    closers.push(() => dispatcher.stop());
    // Access rules: every domain asks this one engine (model use, connectors), and every decision is audited.
    // Its errors go to the gateway's log once there is one.
    const policyLog: { to?: HttpServer['log'] } = {};
    const policy = new PolicyService(db, deps.authz, { onError: (err, what) => policyLog.to?.error({ err }, what) });
    closers.push(await policy.start());
    // Chat: completions routed to nodes serving inference.
    const chat = new ChatService(db, deps.authz, nodeClient, (node) => vault.open(node.token_ciphertext, workerTokenContext(node.id)), { timeoutSeconds: config.chatTimeoutSeconds, retries: config.chatRetries, backoffMs: 200 }, policy);
    const completions = new ChatCompletions(chat, config.chatTimeoutSeconds);
    // Prompt tasks ask for models as chat does.
    const tasks = new TaskService(db, deps.authz, config, dispatcher, chat);
    // Runs see tasks through the task service: tasks build on runs, not the other way round.
    const runs = new RunService(db, deps.authz, tasks, ledger, runHub, liveStreams);
    // Run commands: accepted by the gateway, applied by one runner per process (claims decide which).
    const commandRunner = new CommandRunner({ db, jobs: dispatcher, sandboxes: new NodeSandboxControl(db, nodeClient, (id) => workerTokenFor(db, vault, id)) });
    closers.push(() => commandRunner.stop());
    const commands = new CommandService(db, deps.authz, () => commandRunner.wake());
    const sessions = new SessionService(db);
    const agentTokens = new AgentTokenService(db, new AgentTokens(masterKey.derive('agent-token-signing')), deps.authz, { findTask: (u, ref) => tasks.findVisible(u, ref), session: (p, id) => sessions.get(p, id) });

    // What every request and completion would otherwise ask the database, dropped when it changes.
    closers.push(await dropOnChange(db, 'access_changed', [auth.credentials, chat.projects, agentTokens.rows]));
    closers.push(await db.listen('access_changed', () => void liveStreams.recheck()));
    closers.push(await dropOnChange(db, 'nodes_changed', [chat.serving]));

    // "Share on LAN": extra listeners on this machine's LAN addresses, sharing the gateway's handler.
    const lanSharing = new LanSharing(db, config.host);
    const retention = new RetentionService(db, deps.authz, config.accessAuditRetentionDays);
    // Connectors: the gateway seals credentials for, and runs operations through, the executor.
    const connectorPolicy = connectorPolicyOf(policy);
    const connectorLog: { to?: HttpServer['log'] } = {};
    const connectorHealth = new ConnectorHealth(db, connectorExecutor, {
      breakerFailures: config.connectorBreakerFailures,
      intervalSeconds: config.connectorHealthSeconds,
      onError: (err) => connectorLog.to?.error({ err }, 'connector health checks failed; the next round retries'),
    });
    // Stopped before the executor and the database close (closers run in reverse).
    closers.push(() => connectorHealth.stop());
    const connectors = {
      instances: new ConnectorService(db, deps.authz, connectorPolicy, connectorHealth),
      credentials: new ConnectorCredentialService(db, deps.authz, connectorPolicy, connectorExecutor),
      operations: new ConnectorOperationService(db, deps.authz, connectorPolicy, connectorExecutor, connectorHealth, new RateLimiter(config.connectorRatePerMinute)),
      subscriptions: new ConnectorSubscriptionService(db, deps.authz, connectorPolicy),
    };
    eventInvoker.to = connectors.operations;
    const gateway = await buildGateway(config, isStarted, deps, {
      auth,
      identity,
      liveStreams,
      readiness,
      nodeAdmin,
      tasks,
      chat,
      completions,
      policy,
      runs,
      commands,
      sessions,
      agentTokens,
      transcripts: new TranscriptService(db, deps.authz),
      retention,
      lanSharing,
      connectors,
    });
    closers.push(() => gateway.close());
    policyLog.to = gateway.log.child({ module: 'policy' });
    connectorLog.to = gateway.log.child({ module: 'connectors' });
    const eventLog = gateway.log.child({ module: 'connector-events' });
    events.logTo((obj, msg) => eventLog.error(obj, msg));
    liveStreams.logTo(gateway.log.child({ module: 'streams' }));
    // Before the gateway closes (closers run in reverse): its LAN listeners and their connections end.
    closers.push(() => lanSharing.close());
    // Background processes in runs' sandboxes. Their routes join the gateway here, where the vault
    // is at hand; their watchers stop before the gateway closes (closers run in reverse).
    const processes = new ProcessService({ db, authz: deps.authz, client: nodeClient, target: (nodeId) => workerApiTarget(db, nodeId, (id) => workerTokenFor(db, vault, id)), log: gateway.log.child({ module: 'processes' }) });
    processRoutes(gateway, processes);
    closers.push(() => processes.close());
    // Preferences: the fold the project-manager agent reads its settings from (README, Preferences).
    const preferences = new PreferenceService(db, deps.authz, tasks);
    preferenceRoutes(gateway, preferences);
    // CyNode as an MCP server, and the cynodeai.pm agent through it: tools call the services above as the caller.
    const tools = toolCatalog({ authz: deps.authz, tasks, runs, sessions, projects: identity.projects, nodes: nodeAdmin.admin, models: chat, processes, connectors, preferences });
    const mcp = new McpService(db, deps.authz, policy, tools, { onError: (err, what) => gateway.log.child({ module: 'mcp' }).error({ err }, what) });
    mcpRoutes(gateway, mcp, { version: VERSION });
    mountPmAgent(gateway, completions, { chat, mcp, agentTokens, sessions, preferences, db, approvals: new ApprovalService(db) });
    agentTokenRoutes(gateway, agentTokens);
    // Before the gateway closes (closers run in reverse): open event streams would hold it open.
    closers.push(async () => liveStreams.close());
    // Before the gateway closes (closers run in reverse): open generations would hold it open.
    closers.push(async () => chat.close());
    const control = await buildControlPlane(config, isStarted, readiness, controlPlane, nodeTokens);
    closers.push(() => control.close());
    const nodeLiveness = new NodeLiveness(db, { staleAfterSeconds: config.nodeStaleSeconds, onError: (err, what) => control.log.error({ err }, `node liveness: ${what} failed`) });
    // Stopped before the servers close and the database with them (closers run in reverse).
    closers.push(() => nodeLiveness.stop());

    await listen(gateway, 'gateway', 'CYNODE_GATEWAY_PORT', config.host, config.gatewayPort);
    // The stored "share on LAN" choice, on the gateway's port (unless CYNODE_HOST decides).
    await lanSharing.start();
    await listen(control, 'control plane', 'CYNODE_CONTROL_PORT', config.host, config.controlPort);
    controlPort = (control.server.address() as AddressInfo).port;
    nodeLiveness.start();
    connectorHealth.start();
    // Only once both ports are ours: a start that fails (port in use) must not create the admin
    // and file its generated password without ever showing it; the next start would stay silent.
    const setup = await firstRun(db, identity.users, { adminPassword: config.adminPassword, passwordFile: dataFiles.initialAdminPassword(config.dataDir) });
    // A generated-password file whose password was changed elsewhere (another gateway) goes now.
    await reconcileFirstRunPassword(db, dataFiles.initialAdminPassword(config.dataDir));
    // Before the gateway serves a stream; its errors go to the gateway's log.
    await runHub.start(gateway.log.child({ module: 'runs' }));
    await dispatcher.start(gateway.log.child({ module: 'dispatch' }));
    // Its first round applies what was accepted but not applied before a crash.
    await commandRunner.start(gateway.log.child({ module: 'commands' }));
    // A node going stale ends the leases of its jobs: handle that now, not at the next poll.
    nodeLiveness.onStale(() => dispatcher.wake());
    nodeLiveness.onStale((ids) => events.nodesLost(ids));
    const executorFailed = await executorStarted;
    if (executorFailed) throw executorFailed;
    // Before the embedded node, which joins through the control plane.
    started = true;

    if (config.embeddedNode) {
      // The desktop's own node joins over loopback exactly as a remote one joins over the LAN.
      const log = gateway.log.child({ module: 'embedded-node' });
      const node = await startNodeManager({
        controlUrl: `http://${loopbackOf(config.host)}:${controlPort}`,
        psk: await joinPsk.current(),
        labels: ['orchestrator_host'],
        stateDir: join(config.dataDir, 'node'),
        workerHost: '127.0.0.1',
        workerPort: config.embeddedWorkerPort,
        sandboxImage: config.sandboxImage,
        maxConcurrency: config.embeddedNodeMaxJobs,
        ollamaHost: config.ollamaHost,
        inferenceMode: config.inferenceMode,
        ollamaImage: config.ollamaImage,
        logLevel: config.logLevel,
        log: (message) => log.info(message),
      });
      // Closed first (closers run in reverse): its sandboxes end before the orchestrator does.
      closers.push(() => node.close());
      // Chat and prompt tasks reach its Ollama without the loopback Worker API hop.
      const stopInProcess = nodeClient.addInProcessNode(node);
      closers.push(async () => stopInProcess());
    }

    return {
      gatewayUrl: listenerUrl((gateway.server.address() as AddressInfo).port, config.host),
      controlUrl: listenerUrl(controlPort, config.host),
      db,
      database: database.description,
      firstRun: setup,
      connectorExecutor,
      agentTokens,
      localSession: (handle = 'admin') => auth.localSession(handle, { requestId: `desktop-${randomUUID()}`, ip: 'local', userAgent: 'CyNode desktop' }),
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
