import { Type } from '@sinclair/typebox';
import type { ConnectorService } from '../../connectors/service';
import type { ConnectorOperationService } from '../../connectors/invocations';
import { connectorView, typeView } from '../../connectors/routes';
import { defineTool, UUID_PATTERN, type ToolDef } from '../catalog';

/**
 * Connectors, as /v1/connectors: the catalog, your instances, and running an operation. An
 * invocation goes through the connector service, so its policy (`connector.invoke`), egress,
 * rate limit and history apply exactly as on REST.
 */
export function connectorTools(instances: ConnectorService, operations: ConnectorOperationService): ToolDef[] {
  return [
    defineTool({
      name: 'connector.catalog.list',
      title: 'List connector types',
      description: 'The connector types CyNode knows, with their configuration, credential types and operations (each with its request schema).',
      input: Type.Object({}, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async () => ({ types: instances.catalog().map(typeView) }),
    }),
    defineTool({
      name: 'connector.instance.list',
      title: 'List connector instances',
      description: 'The connector instances you own or share through a group (all of them for admins), oldest first; page on with `cursor`.',
      input: Type.Object(
        { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })), cursor: Type.Optional(Type.String({ maxLength: 512 })) },
        { additionalProperties: false },
      ),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        const page = await instances.list({ by: caller.principal, ctx }, { cursor: args.cursor, limit: args.limit ?? 50 });
        return { connectors: page.instances.map(connectorView), next_cursor: page.nextCursor ?? null };
      },
    }),
    defineTool({
      name: 'connector.op.invoke',
      title: 'Run a connector operation',
      description:
        'Runs `operation` of connector instance `connector_id` with `params` (checked against the operation request schema; connector.catalog.list shows it). ' +
        'The same `idempotency_key` answers the recorded outcome without running the operation again.',
      input: Type.Object(
        {
          connector_id: Type.String({ pattern: UUID_PATTERN }),
          operation: Type.String({ minLength: 1, maxLength: 100 }),
          params: Type.Record(Type.String(), Type.Unknown()),
          task_id: Type.Optional(Type.String({ pattern: UUID_PATTERN })),
          idempotency_key: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        },
        { additionalProperties: false },
      ),
      readOnly: false,
      destructive: false,
      idempotent: false,
      openWorld: true,
      run: async (args, { caller, ctx }) => {
        const r = await operations.invoke({ by: caller.principal, ctx }, args.connector_id, { operation: args.operation, params: args.params, taskId: args.task_id, idempotencyKey: args.idempotency_key });
        return { operation_id: r.operationId, result: r.result, attempts: r.attempts, duration_ms: r.durationMs, provider_status: r.providerStatus, replayed: r.replayed };
      },
    }),
  ];
}
