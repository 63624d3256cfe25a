import { useEffect } from 'react';
import { api } from '../api/client';
import type { Project } from '../api/types';
import { useSession } from '../store/session';
import { useUi } from '../store/ui';
import { useLoad } from './common';

/** The project the console works in: remembered, and always one the user can still see. */
export function useProject(): { projectId: string | null; projects: Project[] | undefined; error: string | null } {
  const me = useSession((s) => s.me);
  const { projectId, setProject } = useUi();
  const list = useLoad((signal) => api.get<{ projects: Project[] }>('/v1/projects?active_only=true&limit=200', signal).then((r) => r.projects), [me?.id]);
  const projects = list.data;
  const valid = projects?.some((p) => p.id === projectId) ? projectId : (me?.default_project_id ?? projects?.[0]?.id ?? null);
  useEffect(() => {
    if (projects && valid !== projectId) setProject(valid);
  }, [projects, valid, projectId, setProject]);
  return { projectId: valid, projects, error: list.error };
}

export function ProjectPicker({ projectId, projects, onChange }: { projectId: string | null; projects: Project[] | undefined; onChange?: (id: string) => void }) {
  const setProject = useUi((s) => s.setProject);
  if (!projects || projects.length < 2) {
    const p = projects?.find((x) => x.id === projectId);
    return p ? <span className="chip" title="Project">{p.display_name}</span> : null;
  }
  return (
    <label className="inline-select">
      <span className="sr-only">Project</span>
      <select
        aria-label="Project"
        value={projectId ?? ''}
        onChange={(e) => {
          setProject(e.target.value);
          onChange?.(e.target.value);
        }}
      >
        {projects.map((p) => (
          <option key={p.id} value={p.id}>
            {p.display_name}
            {p.is_default ? ' (default)' : ''}
          </option>
        ))}
      </select>
    </label>
  );
}
