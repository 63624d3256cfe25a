import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Nullable, PageQuery, Strict, Timestamp, Uuid, errors, iso } from '../http/schemas';
import type { ConnectorAct } from './access';
import type { ConnectorCredentialService } from './credentials';
import type { ConnectorOperationService } from './invocations';
import type { ConnectorService } from './service';
import type { CredentialRow, InstanceRow, OperationRow } from './store';
import type { ConnectorTypeSpec, OperationSpec } from './types/contract';

const Name = Type.String({ minLength: 1, maxLength: 200 });
const JsonObject = Type.Record(Type.String(), Type.Unknown());
const CredentialKind = Type.Union([Type.Literal('password'), Type.Literal('bearer_token'), Type.Literal('basic'), Type.Literal('custom_header'), Type.Literal('api_key')]);
const Status = Type.Union([Type.Literal('provisioning'), Type.Literal('active'), Type.Literal('degraded'), Type.Literal('error'), Type.Literal('credential_expired'), Type.Literal('disabled')]);

const Operation = Type.Object({
  name: Type.String(),
  title: Type.String(),
  description: Type.String(),
  request_schema: Type.Unknown({ description: 'JSON Schema of the params' }),
  result_schema: Type.Unknown({ description: 'JSON Schema of the result' }),
  execution: Type.Union([Type.Literal('sync'), Type.Literal('async')]),
  timeout_ms: Type.Integer({ description: 'Cap on one attempt' }),
  idempotent: Type.Boolean(),
  retry: Type.Object({ attempts: Type.Integer({ description: 'Including the first; transient failures of idempotent operations only' }), backoff_ms: Type.Integer() }),
});

const ConnectorType = Type.Object({
  type: Type.String(),
  title: Type.String(),
  description: Type.String(),
  config_schema: Type.Unknown({ description: 'JSON Schema of an instance configuration (never a secret)' }),
  credential_types: Type.Array(Type.String()),
  credential_required: Type.Boolean(),
  operations_discovered: Type.Boolean({ description: "True when the operations are each instance's own, learnt from its peer (an MCP server's tools): GET /v1/connectors/{id}/operations/catalog" }),
  operations: Type.Array(Operation),
});

const Connector = Type.Object({
  id: Type.String(),
  type: Type.String(),
  name: Type.String(),
  owner: Type.Object({ type: Type.Union([Type.Literal('user'), Type.Literal('group')]), id: Type.String() }),
  project_id: Nullable(Type.String()),
  config: JsonObject,
  status: Status,
  last_error: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
});

const Credential = Type.Object(
  {
    id: Type.String(),
    connector_id: Type.String(),
    type: CredentialKind,
    version: Type.Integer(),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled'), Type.Literal('revoked')]),
    key_id: Nullable(Type.String({ description: 'The executor key the secret is sealed to' })),
    created_at: Timestamp,
    rotated_at: Nullable(Timestamp),
    expires_at: Nullable(Timestamp),
  },
  { description: 'Metadata only: the secret is never returned' },
);

const HistoryRow = Type.Object({
  id: Type.String(),
  request_id: Type.String(),
  subject_id: Type.String(),
  connector_id: Type.String(),
  operation: Type.String(),
  decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  decision_audit_id: Nullable(Type.String({ description: 'The policy decision in the access audit' })),
  outcome: Type.Union([Type.Literal('pending'), Type.Literal('success'), Type.Literal('failure')]),
  failure_class: Nullable(Type.String()),
  message: Nullable(Type.String()),
  duration_ms: Nullable(Type.Integer()),
  provider_status: Nullable(Type.Integer()),
  attempts: Type.Integer(),
  retries: Type.Integer(),
  credential_id: Nullable(Type.String()),
  credential_version: Nullable(Type.Integer()),
  task_id: Nullable(Type.String()),
  idempotency_key: Nullable(Type.String()),
  created_at: Timestamp,
  finished_at: Nullable(Timestamp),
});

const EgressAllow = Type.Object({ entries: Type.Array(Type.String()), updated_at: Timestamp, updated_by: Nullable(Type.String()) });

const operationView = (o: OperationSpec) => ({
  name: o.name,
  title: o.title,
  description: o.description,
  request_schema: o.requestSchema,
  result_schema: o.resultSchema,
  execution: o.execution,
  timeout_ms: o.timeoutMs,
  idempotent: o.idempotent,
  retry: { attempts: o.retry.attempts, backoff_ms: o.retry.backoffMs },
});

export const typeView = (s: ConnectorTypeSpec & { discovers: boolean }) => ({
  type: s.type,
  title: s.title,
  description: s.description,
  config_schema: s.configSchema,
  credential_types: s.credentialTypes,
  credential_required: s.credentialRequired,
  operations_discovered: s.discovers,
  operations: s.operations.map(operationView),
});

export const connectorView = (i: InstanceRow) => ({
  id: i.id,
  type: i.type,
  name: i.name,
  owner: i.owner_group_id ? { type: 'group' as const, id: i.owner_group_id } : { type: 'user' as const, id: i.owner_user_id! },
  project_id: i.project_id,
  config: i.config,
  status: i.status,
  last_error: i.last_error,
  created_at: i.created_at.toISOString(),
  updated_at: i.updated_at.toISOString(),
});

const credentialView = (c: CredentialRow) => ({
  id: c.id,
  connector_id: c.instance_id,
  type: c.type,
  version: c.version,
  status: c.status,
  key_id: c.key_id,
  created_at: c.created_at.toISOString(),
  rotated_at: iso(c.rotated_at),
  expires_at: iso(c.expires_at),
});

const historyView = (o: OperationRow) => ({
  id: o.id,
  request_id: o.request_id,
  subject_id: o.subject_id,
  connector_id: o.instance_id,
  operation: o.operation,
  decision: o.decision,
  decision_audit_id: o.decision_audit_id,
  outcome: o.outcome,
  failure_class: o.failure_class,
  message: o.message,
  duration_ms: o.duration_ms,
  provider_status: o.provider_status,
  attempts: o.attempts,
  retries: Math.max(0, o.attempts - 1),
  credential_id: o.credential_id,
  credential_version: o.credential_version,
  task_id: o.task_id,
  idempotency_key: o.idempotency_key,
  created_at: o.created_at.toISOString(),
  finished_at: iso(o.finished_at),
});

const egressView = (e: { entries: string[]; updated_at: Date; updated_by: string | null }) => ({ entries: e.entries, updated_at: e.updated_at.toISOString(), updated_by: e.updated_by });

const CredentialParams = Strict({ id: Uuid, cid: Uuid });
const OperationParams = Strict({ id: Uuid, op: Type.String({ minLength: 1, maxLength: 100 }) });
const ExpiresAt = Type.Optional(Type.String({ format: 'date-time', description: 'After this the credential is no longer used' }));
const Secret = Type.Record(Type.String(), Type.Unknown(), { description: "The secret part, as the credential type's schema says (e.g. {token} for bearer_token)" });

const tags = ['connectors'];

/** Connector catalog, instances, credentials, operations and their history, and the egress allow list. */
export function connectorRoutes(app: HttpServer, connectors: ConnectorService, credentials: ConnectorCredentialService, operations: ConnectorOperationService): void {
  const act = (request: FastifyRequest): ConnectorAct => ({ by: request.principal!, ctx: requestContext(request) });
  const one = { params: IdParams, response: { 200: Connector, ...errors(400, 401, 403, 404) } };

  app.get(
    '/v1/connectors/catalog',
    { schema: { tags, summary: 'Connector types, their configuration and operations', response: { 200: Type.Object({ types: Type.Array(ConnectorType) }), ...errors(401) } } },
    async () => ({ types: connectors.catalog().map(typeView) }),
  );

  app.get(
    '/v1/connectors/egress-allow',
    { schema: { tags, summary: 'Destinations connectors may reach beyond CYNODE_CONNECTOR_ALLOW (admins)', response: { 200: EgressAllow, ...errors(401, 403) } } },
    async (request) => egressView(await connectors.egressAllow(act(request))),
  );

  app.put(
    '/v1/connectors/egress-allow',
    {
      schema: {
        tags,
        summary: 'Replace the egress allow list (admins): host names, *.domain, addresses and CIDRs',
        body: Strict({ entries: Type.Array(Type.String({ minLength: 1, maxLength: 300 }), { maxItems: 500 }) }),
        response: { 200: EgressAllow, ...errors(400, 401, 403) },
      },
    },
    async (request) => egressView(await connectors.setEgressAllow(act(request), request.body.entries)),
  );

  app.post(
    '/v1/connectors',
    {
      schema: {
        tags,
        summary: 'Install a connector instance (owned by the caller, or by a group)',
        body: Strict({ type: Type.String({ minLength: 1, maxLength: 100 }), name: Name, config: JsonObject, owner_group_id: Type.Optional(Uuid), project_id: Type.Optional(Uuid) }),
        response: { 201: Connector, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const created = await connectors.install(act(request), { type: b.type, name: b.name, config: b.config, ownerGroupId: b.owner_group_id, projectId: b.project_id });
      reply.code(201);
      return connectorView(created);
    },
  );

  app.get(
    '/v1/connectors',
    {
      schema: {
        tags,
        summary: "Connector instances the caller owns or shares through a group, oldest first",
        querystring: Strict(PageQuery),
        response: { 200: Type.Object({ connectors: Type.Array(Connector), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401) },
      },
    },
    async (request) => {
      const page = await connectors.list(act(request), request.query);
      return { connectors: page.instances.map(connectorView), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
    },
  );

  app.get('/v1/connectors/:id', { schema: { tags, summary: 'One connector instance', ...one } }, async (request) => connectorView(await connectors.get(act(request), request.params.id)));

  app.patch(
    '/v1/connectors/:id',
    {
      schema: {
        tags,
        summary: 'Rename an instance or replace its configuration (checked against its type)',
        params: IdParams,
        body: Strict({ name: Type.Optional(Name), config: Type.Optional(JsonObject) }),
        response: one.response,
      },
    },
    async (request) => connectorView(await connectors.update(act(request), request.params.id, request.body)),
  );

  app.delete(
    '/v1/connectors/:id',
    { schema: { tags, summary: 'Uninstall: credentials are revoked, the history stays', params: IdParams, response: { 204: Type.Null(), ...errors(400, 401, 403, 404) } } },
    async (request, reply) => {
      await connectors.delete(act(request), request.params.id);
      reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/connectors/:id/enable',
    { schema: { tags, summary: 'Switch an instance on; its health check decides its status', ...one } },
    async (request) => connectorView(await connectors.enable(act(request), request.params.id)),
  );

  app.post(
    '/v1/connectors/:id/disable',
    { schema: { tags, summary: 'Switch an instance off: calls are refused until it is enabled', ...one } },
    async (request) => connectorView(await connectors.disable(act(request), request.params.id)),
  );

  app.get(
    '/v1/connectors/:id/credentials',
    { schema: { tags, summary: "An instance's credentials (metadata only)", params: IdParams, response: { 200: Type.Object({ credentials: Type.Array(Credential) }), ...errors(400, 401, 404) } } },
    async (request) => ({ credentials: (await credentials.list(act(request), request.params.id)).map(credentialView) }),
  );

  app.post(
    '/v1/connectors/:id/credentials',
    {
      schema: {
        tags,
        summary: 'Add a credential: sealed for the connector executor, never returned',
        params: IdParams,
        body: Strict({ type: CredentialKind, secret: Secret, expires_at: ExpiresAt }),
        response: { 201: Credential, ...errors(400, 401, 403, 404, 503) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const created = await credentials.create(act(request), request.params.id, { type: b.type, secret: b.secret, ...(b.expires_at ? { expiresAt: new Date(b.expires_at) } : {}) });
      reply.code(201);
      return credentialView(created);
    },
  );

  app.post(
    '/v1/connectors/:id/credentials/:cid/rotate',
    {
      schema: {
        tags,
        summary: 'Replace the secret of a credential (its next version); the old one is never used again',
        params: CredentialParams,
        body: Strict({ secret: Secret, expires_at: ExpiresAt }),
        response: { 200: Credential, ...errors(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request) => {
      const b = request.body;
      const { id, cid } = request.params;
      return credentialView(await credentials.rotate(act(request), id, cid, { secret: b.secret, ...(b.expires_at ? { expiresAt: new Date(b.expires_at) } : {}) }));
    },
  );

  for (const [verb, status] of [
    ['revoke', 'revoked'],
    ['disable', 'disabled'],
  ] as const) {
    app.post(
      `/v1/connectors/:id/credentials/:cid/${verb}`,
      {
        schema: {
          tags,
          summary: verb === 'revoke' ? 'Revoke a credential: its ciphertext is erased, the next call is refused' : 'Disable a credential until it is rotated',
          params: CredentialParams,
          response: { 200: Credential, ...errors(400, 401, 403, 404, 409) },
        },
      },
      async (request) => credentialView(await credentials.setStatus(act(request), request.params.id, request.params.cid, status)),
    );
  }

  app.post(
    '/v1/connectors/:id/operations/:op',
    {
      schema: {
        tags,
        summary: 'Run an operation of an instance',
        description: 'The params are checked against the operation schema of the catalog. The same idempotency_key on the same instance and operation answers the recorded outcome without running it again.',
        params: OperationParams,
        body: Strict({ params: JsonObject, task_id: Type.Optional(Uuid), idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }),
        response: {
          200: Type.Object({
            operation_id: Type.String(),
            result: Type.Unknown({ description: 'As the operation result schema says, with secrets redacted' }),
            attempts: Type.Integer(),
            duration_ms: Type.Integer(),
            provider_status: Nullable(Type.Integer()),
            replayed: Type.Boolean(),
          }),
          ...errors(400, 401, 403, 404, 409, 429, 502, 503),
        },
      },
    },
    async (request) => {
      const b = request.body;
      const r = await operations.invoke(act(request), request.params.id, { operation: request.params.op, params: b.params, taskId: b.task_id, idempotencyKey: b.idempotency_key });
      return { operation_id: r.operationId, result: r.result, attempts: r.attempts, duration_ms: r.durationMs, provider_status: r.providerStatus, replayed: r.replayed };
    },
  );

  app.get(
    '/v1/connectors/:id/operations/catalog',
    {
      schema: {
        tags,
        summary: "An instance's operations: its type's, or its MCP server's tools",
        description:
          'For a type that declares its operations, the same as the catalog. For an mcp instance, the tools its server lists now, learnt by the connector executor with the instance\'s credential and kept there for a minute per configuration and credential version; as that starts the server, it takes owning the instance (or its group) or connector.manage. 409 when the instance is disabled or has no usable credential; 502/503 when the server cannot be started or reached.',
        params: IdParams,
        response: { 200: Type.Object({ discovered: Type.Boolean(), operations: Type.Array(Operation) }), ...errors(400, 401, 403, 404, 409, 502, 503) },
      },
    },
    async (request) => {
      const c = await operations.catalog(act(request), request.params.id);
      return { discovered: c.discovered, operations: c.operations.map(operationView) };
    },
  );

  app.get(
    '/v1/connectors/:id/operations',
    {
      schema: {
        tags,
        summary: "An instance's operation history, newest first",
        params: IdParams,
        querystring: Strict(PageQuery),
        response: { 200: Type.Object({ operations: Type.Array(HistoryRow), next_cursor: Type.Optional(Type.String()) }), ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const page = await operations.history(act(request), request.params.id, request.query);
      return { operations: page.operations.map(historyView), ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
    },
  );
}
