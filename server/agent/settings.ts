import type { Principal } from '../http/principal';

/** How the project-manager agent runs for one caller (README "The project-manager agent"). */
export interface AgentSettings {
  /** The model that backs cynodeai.pm; absent: the first served model with the `tools` capability. */
  model?: string;
  /** Model calls per turn before the turn ends with what happened so far. */
  maxSteps: number;
  /** Whole-turn cap, tool calls included. */
  maxSeconds: number;
  /** Which tool calls wait for the user's approval (only `never` is implemented in this slice). */
  approval: 'never' | 'mutating';
}

export const DEFAULT_AGENT_SETTINGS: AgentSettings = { maxSteps: 8, maxSeconds: 120, approval: 'never' };

/**
 * Where settings come from. Today the defaults (and test overrides); the preferences domain
 * (keys agent.pm.model, agent.pm.max_steps, agent.pm.max_seconds, agent.pm.approval) plugs in here.
 */
export type AgentSettingsProvider = (principal: Principal, scope: { projectId?: string }) => Promise<AgentSettings>;

export const fixedSettings =
  (overrides: Partial<AgentSettings> = {}): AgentSettingsProvider =>
  async () => ({ ...DEFAULT_AGENT_SETTINGS, ...overrides });
