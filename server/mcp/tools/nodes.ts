import { Type } from '@sinclair/typebox';
import type { Principal, RequestContext } from '../../http/principal';
import { notFound } from '../../http/problem';
import type { NodeAdminService } from '../../nodes/admin-service';
import { nodeView, runningJobView } from '../../nodes/admin-routes';
import type { Authorizer } from '../../rbac/service';
import { defineTool, UUID_PATTERN, type ToolDef } from '../catalog';

/** The models a user may use now (the chat service's answer to GET /v1/models). */
export interface ModelCatalog {
  models(principal: Principal, ctx?: RequestContext): Promise<string[]>;
}

/** Nodes (`nodes.read`, as GET /v1/nodes) and the models you may use (as GET /v1/models): reading only. */
export function nodeTools(authz: Authorizer, nodes: NodeAdminService, models: ModelCatalog): ToolDef[] {
  return [
    defineTool({
      name: 'node.list',
      title: 'List nodes',
      description: 'Every node: status, whether it takes jobs, capability summary, running jobs. Needs the right to read nodes (admins and operators).',
      input: Type.Object({}, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (_args, { caller, ctx }) => {
        await authz.require(caller.principal, 'nodes.read', ctx, { resourceType: 'node' });
        return { nodes: (await nodes.list()).map(nodeView) };
      },
    }),
    defineTool({
      name: 'node.get',
      title: 'Get a node',
      description: 'One node with its full capability report and the jobs running on it.',
      input: Type.Object({ node_id: Type.String({ pattern: UUID_PATTERN }) }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        await authz.require(caller.principal, 'nodes.read', ctx, { resourceType: 'node', resourceId: args.node_id });
        const { node, jobs } = await nodes.get(args.node_id);
        return { ...nodeView(node), capability: node.capability, jobs: jobs.map(runningJobView) };
      },
    }),
    defineTool({
      name: 'model.list',
      title: 'List models',
      description: 'The models you may use now: those of the nodes serving inference, filtered by the access rules.',
      input: Type.Object({}, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (_args, { caller, ctx }) => ({ models: (await models.models(caller.principal, ctx)).map((id) => ({ id })) }),
    }),
    defineTool({
      name: 'model.get',
      title: 'Get a model',
      description: 'One model, if a node serves it now and you may use it.',
      input: Type.Object({ model_id: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        if (!(await models.models(caller.principal, ctx)).includes(args.model_id)) throw notFound('Model');
        return { id: args.model_id };
      },
    }),
  ];
}
