import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../http/server';
import { requestContext } from '../http/server';
import { IdParams, Strict, Timestamp, Uuid, errors } from '../http/schemas';
import type { ConnectorAct } from './access';
import { EVENT_NAMES, type ConnectorSubscriptionService } from './subscriptions';
import type { SubscriptionRow } from './subscriptions-store';

const Subscription = Type.Object({
  id: Type.String(),
  connector_id: Type.String(),
  owner_user_id: Type.String(),
  events: Type.Array(Type.String()),
  operation: Type.String(),
  params: Type.Record(Type.String(), Type.Unknown(), { description: "The operation's parameters, a template: {{subject}}, {{text}}, {{task_name}}… are filled in at delivery" }),
  created_at: Timestamp,
});

const subscriptionView = (s: SubscriptionRow) => ({
  id: s.id,
  connector_id: s.instance_id,
  owner_user_id: s.owner_user_id,
  events: s.events,
  operation: s.operation,
  params: s.params,
  created_at: s.created_at.toISOString(),
});

const tags = ['connectors'];

/** Subscriptions of a connector instance to events (task.completed, task.failed, node.lost). */
export function connectorSubscriptionRoutes(app: HttpServer, subscriptions: ConnectorSubscriptionService): void {
  const act = (request: FastifyRequest): ConnectorAct => ({ by: request.principal!, ctx: requestContext(request) });

  app.post(
    '/v1/connectors/:id/subscriptions',
    {
      schema: {
        tags,
        summary: 'Subscribe an instance to events: each is delivered by running one of its operations as you',
        description:
          `Events: ${EVENT_NAMES.join(', ')} (node.lost for those who manage nodes). The params are a template of the operation's ` +
          'parameters; the message fills {{subject}}, {{text}}, {{event}}, {{task_id}}, {{task_name}}, {{task_status}}, {{failure_reason}}, ' +
          "{{node_id}}, {{node_name}}, and an operation's subject and text parameters when the template leaves them out. " +
          'Only someone who may run the operation may subscribe it.',
        params: IdParams,
        body: Strict({
          events: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 10 }),
          operation: Type.String({ minLength: 1, maxLength: 100 }),
          params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        }),
        response: { 201: Subscription, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const created = await subscriptions.create(act(request), request.params.id, { events: b.events, operation: b.operation, params: b.params ?? {} });
      reply.code(201);
      return subscriptionView(created);
    },
  );

  app.get(
    '/v1/connectors/:id/subscriptions',
    {
      schema: {
        tags,
        summary: "Your subscriptions of an instance to events (every one's for admins), oldest first",
        params: IdParams,
        response: { 200: Type.Object({ subscriptions: Type.Array(Subscription) }), ...errors(400, 401, 404) },
      },
    },
    async (request) => ({ subscriptions: (await subscriptions.list(act(request), request.params.id)).map(subscriptionView) }),
  );

  app.delete(
    '/v1/connectors/:id/subscriptions/:sid',
    {
      schema: {
        tags,
        summary: 'End a subscription: its events are no longer delivered',
        params: Strict({ id: Uuid, sid: Uuid }),
        response: { 204: Type.Null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await subscriptions.delete(act(request), request.params.id, request.params.sid);
      reply.code(204).send(null);
    },
  );
}
