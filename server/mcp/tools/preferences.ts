import { Type } from '@sinclair/typebox';
import type { PreferenceService } from '../../preferences/service';
import { Key, ScopeId, ScopeType, ValueType, preferenceView } from '../../preferences/routes';
import { defineTool, type ToolDef } from '../catalog';

const Scope = { scope_type: ScopeType, scope_id: Type.Optional(ScopeId) };
const Reason = Type.Optional(Type.String({ maxLength: 1000, description: 'Why; kept in the preference audit log' }));
const ExpectedVersion = Type.Optional(Type.Integer({ minimum: 0, description: 'Write only if the preference is at this version (0: only if it does not exist yet)' }));

/** Preferences, as /v1/prefs: read at a scope, the fold in force, and set or delete (README, MCP server). */
export function preferenceTools(prefs: PreferenceService): ToolDef[] {
  return [
    defineTool({
      name: 'preference.list',
      title: 'List preferences',
      description: 'The preferences set at one scope (system, group, user, project or task); scope_id defaults to yourself for user scope.',
      input: Type.Object(Scope, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        const { preferences } = await prefs.list(caller.principal, { type: args.scope_type, id: args.scope_id }, ctx);
        return { preferences: preferences.map(preferenceView) };
      },
    }),
    defineTool({
      name: 'preference.get',
      title: 'Get a preference',
      description: 'One preference at one scope, with its version.',
      input: Type.Object({ key: Key, ...Scope }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => preferenceView(await prefs.get(caller.principal, { type: args.scope_type, id: args.scope_id }, args.key, ctx)),
    }),
    defineTool({
      name: 'preference.effective',
      title: 'Effective preferences',
      description:
        'The preferences in force, folded task > project > user > group > system, with where each came from. Give task_id or project_id; with neither, ' +
        'an agent bound to a task gets that task\'s, anyone else their own and their groups\' over the system\'s.',
      input: Type.Object({ task_id: Type.Optional(ScopeId), project_id: Type.Optional(ScopeId) }, { additionalProperties: false }),
      readOnly: true,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        const taskId = args.task_id ?? (args.project_id === undefined ? caller.agent?.taskId : undefined);
        return { ...(await prefs.effective(caller.principal, { taskId, projectId: taskId === undefined ? args.project_id : undefined }, ctx)) };
      },
    }),
    defineTool({
      name: 'preference.set',
      title: 'Set a preference',
      description: 'Creates (version 1) or replaces (version + 1) a preference at one scope; known keys (agents.project_manager.*) are type-checked. Never put credentials in a preference.',
      input: Type.Object(
        { key: Key, ...Scope, value: Type.Unknown({ description: 'Any JSON; null masks lower scopes' }), value_type: Type.Optional(ValueType), expected_version: ExpectedVersion, reason: Reason },
        { additionalProperties: false },
      ),
      readOnly: false,
      destructive: false,
      idempotent: true,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        const { preference, created } = await prefs.set(caller.principal, { type: args.scope_type, id: args.scope_id }, args.key, { value: args.value, valueType: args.value_type, expectedVersion: args.expected_version, reason: args.reason }, ctx);
        return { ok: true, key: preference.key, version: preference.version, created, preference: preferenceView(preference) };
      },
    }),
    defineTool({
      name: 'preference.delete',
      title: 'Delete a preference',
      description: 'Removes a preference at one scope; lower scopes become effective again.',
      input: Type.Object({ key: Key, ...Scope, expected_version: ExpectedVersion, reason: Reason }, { additionalProperties: false }),
      readOnly: false,
      destructive: true,
      idempotent: false,
      openWorld: false,
      run: async (args, { caller, ctx }) => {
        await prefs.delete(caller.principal, { type: args.scope_type, id: args.scope_id }, args.key, { expectedVersion: args.expected_version, reason: args.reason }, ctx);
        return { deleted: true };
      },
    }),
  ];
}
