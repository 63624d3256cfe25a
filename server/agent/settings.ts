import type { Principal, RequestContext } from '../http/principal';
import { agentPmSettings } from '../preferences/keys';

/** How the project-manager agent runs for one caller (README "The project-manager agent"). */
export interface AgentSettings {
  /** The model that backs cynodeai.pm; absent: the first served model with the `tools` capability. */
  model?: string;
  /** Model calls per turn before the turn ends with what happened so far. */
  maxSteps: number;
  /** Whole-turn cap, tool calls included. */
  maxSeconds: number;
  /** `mutating`: each tool that changes something waits for the user's approval (./approvals.ts); `never` runs them. */
  approval: 'never' | 'mutating';
}

/** Where settings come from: the preferences fold (preferenceSettings) in the server. */
export type AgentSettingsProvider = (principal: Principal, scope: { projectId?: string }, ctx: RequestContext) => Promise<AgentSettings>;

/** What the agent needs of the preferences domain: the effective fold for the caller. */
export interface PreferenceFold {
  effective(principal: Principal, where: { taskId?: string; projectId?: string }, ctx: RequestContext): Promise<{ effective: Record<string, unknown> }>;
}

/** Settings from preferences (agents.project_manager.*, README "Preferences"), folded for the caller and project. */
export const preferenceSettings =
  (prefs: PreferenceFold): AgentSettingsProvider =>
  async (principal, scope, ctx) => {
    const p = agentPmSettings((await prefs.effective(principal, scope, ctx)).effective);
    return { ...(p.model !== null ? { model: p.model } : {}), maxSteps: p.maxSteps, maxSeconds: p.maxSeconds, approval: p.approval };
  };
