import type { ConnectorOperationService } from '../../connectors/invocations';
import type { ConnectorService } from '../../connectors/service';
import type { NodeAdminService } from '../../nodes/admin-service';
import type { PreferenceService } from '../../preferences/service';
import type { ProcessService } from '../../processes/service';
import type { ProjectService } from '../../projects/service';
import type { Authorizer } from '../../rbac/service';
import type { RunService } from '../../runs/service';
import type { SessionService } from '../../sessions/service';
import type { TaskService } from '../../tasks/service';
import type { ToolDef } from '../catalog';
import { connectorTools } from './connectors';
import { nodeTools, type ModelCatalog } from './nodes';
import { preferenceTools } from './preferences';
import { processTools } from './processes';
import { runTools } from './runs';
import { projectTools, sessionTools } from './sessions';
import { taskTools } from './tasks';

/** The services the tools call, each with the caller's principal (built by the composition root). */
export interface ToolServices {
  authz: Authorizer;
  tasks: TaskService;
  runs: RunService;
  sessions: SessionService;
  projects: ProjectService;
  nodes: NodeAdminService;
  models: ModelCatalog;
  processes: ProcessService;
  connectors: { instances: ConnectorService; operations: ConnectorOperationService };
  preferences: PreferenceService;
}

/** Every tool of the MCP server (README, MCP server), grouped by namespace. */
export function toolCatalog(s: ToolServices): ToolDef[] {
  return [
    ...taskTools(s.tasks),
    ...runTools(s.runs),
    ...sessionTools(s.sessions),
    ...projectTools(s.projects),
    ...nodeTools(s.authz, s.nodes, s.models),
    ...processTools(s.processes),
    ...connectorTools(s.connectors.instances, s.connectors.operations),
    ...preferenceTools(s.preferences),
  ];
}
