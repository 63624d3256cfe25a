import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, Strict, Timestamp, Uuid, errors, iso } from '../http/schemas';
import { NO_STORE } from '../identity/secrets';
import type { RouteDeps } from '../routes';
import type { NodeAction, NodeAdminAct, NodeAdminService } from './admin-service';
import type { NodeModelService } from './model-service';
import { joinCommand, type JoinPsk } from './psk';
import type { AdminState, NodeView, RunningJob } from './store';

export interface NodeAdminDeps {
  admin: NodeAdminService;
  psk: JoinPsk;
  /** The control plane's URL as another machine reaches it (known once it listens). */
  controlPlaneUrl: () => string;
  models: NodeModelService;
}

/** An Ollama model name: `llama3:8b`, `library/qwen3:0.6b`, `hf.co/user/repo:Q4_K_M`. */
const ModelName = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/+-]*$', description: 'An Ollama model name, e.g. llama3:8b' });
const NodeModel = Type.Object({ name: Type.String(), size: Nullable(Type.Integer()), digest: Nullable(Type.String()), modified_at: Nullable(Type.String()) });

const AnyObject = Type.Object({}, { additionalProperties: true });

const CapabilitySummary = Type.Object({
  os: Nullable(Type.String()),
  arch: Nullable(Type.String()),
  cpu_cores: Nullable(Type.Integer()),
  ram_mb: Nullable(Type.Integer()),
  gpu_present: Type.Boolean(),
  container_runtime: Nullable(Type.String()),
  sandbox_supported: Type.Boolean(),
  inference_running: Type.Boolean(),
  models: Type.Array(Type.String()),
});

const NodeProps = {
  node_id: Type.String({ description: 'Same as id' }),
  id: Type.String(),
  node_slug: Type.String(),
  display_name: Nullable(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('stale')], { description: 'Liveness: stale once heartbeats stop' }),
  admin_state: Type.Union([Type.Literal('enabled'), Type.Literal('disabled'), Type.Literal('draining')]),
  enabled: Type.Boolean({ description: 'admin_state is not disabled' }),
  drained: Type.Boolean({ description: 'admin_state is draining: no new jobs, running ones finish' }),
  dispatchable: Type.Boolean({ description: 'Takes new jobs now: active, enabled, config applied, reachable, runs sandboxes' }),
  last_seen_at: Nullable(Timestamp),
  registered_at: Timestamp,
  labels: Type.Array(Type.String()),
  worker_api_target_url: Nullable(Type.String()),
  config_version: Nullable(Type.String()),
  config_ack_version: Nullable(Type.String()),
  config_ack_status: Nullable(Type.String()),
  config_ack_at: Nullable(Timestamp),
  config_ack_error: Nullable(AnyObject),
  capability_summary: Nullable(CapabilitySummary),
  running_jobs: Type.Integer({ description: 'Jobs running on it now' }),
  max_concurrency: Type.Integer(),
};
const Node = Type.Object(NodeProps);
const NodeDetail = Type.Object({
  ...NodeProps,
  capability: Nullable(AnyObject),
  jobs: Type.Array(Type.Object({ job_id: Type.String(), task_id: Type.String(), started_at: Nullable(Timestamp) }), { description: 'The jobs running on it now' }),
});
const ActionResult = Type.Object({ node_id: Type.String(), admin_state: Type.String(), enabled: Type.Boolean(), drained: Type.Boolean() });
const Join = Type.Object({
  psk: Type.String({ description: 'The pre-shared key nodes register with' }),
  control_plane_url: Type.String({ description: 'Where nodes reach the control plane' }),
  join_command: Type.String({ description: 'What to run on the machine that should join' }),
  source: Type.Union([Type.Literal('environment'), Type.Literal('generated')], { description: 'environment: CYNODE_NODE_PSK, which cannot be rotated here' }),
});

type Json = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) ? v : null);
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});

/** The facts a list shows, from the capability report as the node sent it. */
function summaryOf(cap: Json | null) {
  if (!cap) return null;
  const models = obj(cap.inference).available_models;
  return {
    os: str(obj(cap.platform).os),
    arch: str(obj(cap.platform).arch),
    cpu_cores: int(obj(cap.compute).cpu_cores),
    ram_mb: int(obj(cap.compute).ram_mb),
    gpu_present: obj(cap.gpu).present === true,
    container_runtime: str(obj(cap.container_runtime).runtime),
    sandbox_supported: obj(cap.sandbox).supported === true,
    inference_running: obj(cap.inference).running === true,
    models: Array.isArray(models) ? models.filter((m): m is string => typeof m === 'string') : [],
  };
}

const adminFlags = (state: AdminState) => ({ admin_state: state, enabled: state !== 'disabled', drained: state === 'draining' });

export const nodeView = (n: NodeView) => ({
  node_id: n.id,
  id: n.id,
  node_slug: n.node_slug,
  display_name: n.display_name,
  status: n.status,
  ...adminFlags(n.admin_state),
  dispatchable: n.dispatchable,
  last_seen_at: iso(n.last_seen_at),
  registered_at: n.registered_at.toISOString(),
  labels: n.labels,
  worker_api_target_url: n.worker_api_target_url,
  config_version: n.config_version,
  config_ack_version: n.config_ack_version,
  config_ack_status: n.config_ack_status,
  config_ack_at: iso(n.config_ack_at),
  config_ack_error: n.config_ack_error,
  capability_summary: summaryOf(n.capability),
  running_jobs: n.running_jobs,
  max_concurrency: n.max_concurrency,
});

export const runningJobView = (j: RunningJob) => ({ job_id: j.job_id, task_id: j.task_id, started_at: iso(j.started_at) });

/**
 * Node administration on the gateway: `nodes.read` to look, `nodes.manage`
 * to act (the `admin` and `operator` roles), and the join key for admins to hand to a new node.
 */
export function nodeAdminRoutes(app: HttpServer, { authz }: RouteDeps, { admin, psk, controlPlaneUrl, models }: NodeAdminDeps): void {
  const allow = async (request: FastifyRequest, action: 'nodes.read' | 'nodes.manage', resourceId?: string): Promise<NodeAdminAct> => {
    const ctx = requestContext(request);
    await authz.require(request.principal!, action, ctx, { resourceType: 'node', resourceId });
    return { by: request.principal!, ctx };
  };

  const joinAnswer = (key: string) => {
    const url = controlPlaneUrl();
    return { psk: key, control_plane_url: url, join_command: joinCommand(url, key), source: psk.isFixed ? ('environment' as const) : ('generated' as const) };
  };

  app.get(
    '/v1/nodes/join',
    {
      schema: {
        tags: ['nodes'],
        summary: 'The join key and the command that makes another machine a node (reading it is audited)',
        response: { 200: Join, ...errors(401, 403) },
      },
    },
    async (request, reply) => {
      const act = await allow(request, 'nodes.manage');
      reply.headers(NO_STORE);
      return joinAnswer(await psk.reveal(act.by, act.ctx));
    },
  );

  app.post(
    '/v1/nodes/join/rotate',
    {
      schema: {
        tags: ['nodes'],
        summary: 'Replace the join key: the old one stops admitting nodes; registered nodes are not affected',
        description: '409 when CYNODE_NODE_PSK sets the key.',
        response: { 200: Join, ...errors(401, 403, 409) },
      },
    },
    async (request, reply) => {
      const act = await allow(request, 'nodes.manage');
      reply.headers(NO_STORE);
      return joinAnswer(await psk.rotate(act.by, act.ctx));
    },
  );

  app.get(
    '/v1/nodes',
    { schema: { tags: ['nodes'], summary: 'Every registered node, by slug, with liveness, admin state and load', response: { 200: Type.Object({ nodes: Type.Array(Node) }), ...errors(401, 403) } } },
    async (request) => {
      await allow(request, 'nodes.read');
      return { nodes: (await admin.list()).map(nodeView) };
    },
  );

  app.get(
    '/v1/nodes/:id',
    { schema: { tags: ['nodes'], summary: 'One node, with its full capability report and the jobs running on it', params: IdParams, response: { 200: NodeDetail, ...errors(400, 401, 403, 404) } } },
    async (request) => {
      await allow(request, 'nodes.read', request.params.id);
      const { node, jobs } = await admin.get(request.params.id);
      return { ...nodeView(node), capability: node.capability, jobs: jobs.map(runningJobView) };
    },
  );

  const actions: Array<[NodeAction, string]> = [
    ['enable', 'Enable a node: it takes new jobs again'],
    ['disable', 'Disable a node: no new jobs; running ones finish'],
    ['drain', 'Drain a node: no new jobs, running ones finish (then it can be deleted)'],
  ];
  for (const [action, summary] of actions) {
    const handler = async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const act = await allow(request, 'nodes.manage', request.params.id);
      const done = await admin.act(act, request.params.id, action);
      return { node_id: done.id, ...adminFlags(done.admin_state) };
    };
    const schema = { tags: ['nodes'], params: IdParams, response: { 200: ActionResult, ...errors(400, 401, 403, 404) } };
    // `{id}:enable`. find-my-way cannot tell `:id:enable` from `:id:disable` by a plain
    // parameter, so the id is a regex parameter (anything up to the colon; the schema then
    // checks it is a uuid).
    app.post(`/v1/nodes/:id(^[^:]*)::${action}`, { schema: { ...schema, summary } }, handler);
    app.post(`/v1/nodes/:id/${action}`, { schema: { ...schema, summary: `${summary} (same as {id}:${action})` } }, handler);
  }

  app.delete(
    '/v1/nodes/:id',
    {
      schema: {
        tags: ['nodes'],
        summary: 'Delete a node and its credentials; registering again creates it anew',
        description: '409 while jobs run on it: drain it first.',
        params: IdParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const act = await allow(request, 'nodes.manage', request.params.id);
      await admin.delete(act, request.params.id);
      reply.code(204).send(null);
    },
  );
  app.get(
    '/v1/nodes/:id/models',
    { schema: { tags: ['nodes'], summary: "The models a node's Ollama has, asked of the node now", params: IdParams, response: { 200: Type.Object({ models: Type.Array(NodeModel) }), ...errors(400, 401, 403, 404, 409, 502, 503) } } },
    async (request) => {
      await allow(request, 'nodes.read', request.params.id);
      return { models: await models.list(request.params.id) };
    },
  );

  app.post(
    '/v1/nodes/:id/models',
    {
      schema: {
        tags: ['nodes'],
        summary: 'Pull a model onto a node, with progress as server-sent events',
        description:
          'text/event-stream: `event: progress` with {status, completed, total, percent} while the node pulls, then `event: done` ({status, model}) or `event: error` ({message}). ' +
          'Errors before the pull starts are problem documents: 404 unknown node, 502/503 when the node or its Ollama cannot.',
        params: IdParams,
        body: Strict({ model: ModelName }),
        response: { 200: Type.String({ description: 'text/event-stream' }), ...errors(400, 401, 403, 404, 409, 502, 503) },
      },
    },
    async (request, reply) => {
      const act = await allow(request, 'nodes.manage', request.params.id);
      const left = new AbortController();
      // The admin closing the stream stops the pull on the node as well.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) left.abort();
      });
      const events = await models.pull(act, request.params.id, request.body.model, left.signal);
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
        'x-content-type-options': 'nosniff',
        'x-request-id': request.id,
      });
      for await (const e of events) {
        if (reply.raw.destroyed) break;
        reply.raw.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
      }
      reply.raw.end();
    },
  );

  app.delete(
    '/v1/nodes/:id/models/:model',
    {
      schema: {
        tags: ['nodes'],
        summary: 'Delete a model from a node (a name with / is sent percent-encoded)',
        params: Strict({ id: Uuid, model: ModelName }),
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404, 409, 502, 503) },
      },
    },
    async (request, reply) => {
      const act = await allow(request, 'nodes.manage', request.params.id);
      await models.delete(act, request.params.id, request.params.model);
      reply.code(204).send(null);
    },
  );
}
