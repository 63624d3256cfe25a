import type { HttpServer } from '../http/server';
import { agentRoutes } from './routes';
import { PmAgent, preferenceSettings, type PmAgentDeps } from './service';
import type { PreferenceFold } from './settings';

export { ApprovalService } from './approvals';

/**
 * The cynodeai.pm agent in the server: a chat model for the completions, and its approvals'
 * routes on the gateway. Its settings come from the preferences fold.
 */
export function mountPmAgent(app: HttpServer, completions: { attachAgent(agent: PmAgent): void }, deps: Omit<PmAgentDeps, 'settings'> & { preferences: PreferenceFold }): PmAgent {
  const { preferences, ...rest } = deps;
  const agent = new PmAgent({ ...rest, settings: preferenceSettings(preferences) });
  completions.attachAgent(agent);
  agentRoutes(app, agent);
  return agent;
}
