import type { Queryable } from '../db';
import { effective, projectPolicy, systemPolicy, type EffectivePolicy } from './store';

/* What other domains may read about retention: the policy in force for a project. */

/** The project's policy where it set one, else the system's (`projectId` null: the system's). */
export async function effectivePolicy(q: Queryable, projectId: string | null): Promise<EffectivePolicy> {
  const [system, project] = await Promise.all([systemPolicy(q), projectId ? projectPolicy(q, projectId) : null]);
  return effective(system, project);
}
