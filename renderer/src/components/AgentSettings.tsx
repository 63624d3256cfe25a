import { useState } from 'react';
import { ApiError, api, enc, errorText, qs } from '../api/client';
import type { Model } from '../api/types';
import { PM_MODEL } from './AgentSteps';
import { ErrorNote, Loadable, useLoad } from './common';
import { useSession } from '../store/session';
import { useUi } from '../store/ui';

const APPROVAL_KEY = 'agents.project_manager.approval';
const MODEL_KEY = 'agents.project_manager.model.local_default_ollama_model';

/** A preference at one scope: its value and version, or version 0 when that scope does not set it. */
interface Stored {
  value: unknown;
  version: number;
}

async function readPref(key: string, scope: 'user' | 'system', signal?: AbortSignal): Promise<Stored> {
  try {
    const p = await api.get<{ value: unknown; version: number }>(`/v1/prefs/${enc(key)}${qs({ scope_type: scope })}`, signal);
    return { value: p.value, version: p.version };
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return { value: undefined, version: 0 };
    throw err;
  }
}

/**
 * Writes at the version read, so two consoles cannot overwrite each other unseen (a stale version
 * is 409, README "Preferences"); answers the new stored state.
 */
async function writePref(key: string, scope: 'user' | 'system', value: unknown, expected: number): Promise<Stored> {
  const r = await api.put<{ version: number }>(`/v1/prefs/${enc(key)}`, { scope_type: scope, value, expected_version: expected });
  return { value, version: r.version };
}

const conflictText = (err: unknown): string =>
  err instanceof ApiError && err.status === 409 ? 'Someone changed this setting meanwhile; the current value is shown, try again' : errorText(err);

/** Settings of the project-manager agent (cynodeai.pm): yours, and for admins the model behind it. */
export function AgentSettings() {
  const isAdmin = useSession((s) => s.isAdmin());
  return (
    <section className="card" aria-labelledby="agent-settings">
      <h2 id="agent-settings">Project manager agent</h2>
      <p className="muted small">
        The <code>{PM_MODEL}</code> chat model acts for you through CyNode&apos;s tools: it creates and runs tasks and reads their results.
      </p>
      <ApprovalSwitch />
      {isAdmin && <ModelChoice />}
    </section>
  );
}

function ApprovalSwitch() {
  // Without a setting of your own, what applies to you in your default project (a group's or the system's).
  const project = useSession((s) => s.me?.default_project_id ?? null);
  const state = useLoad(
    async (signal) => {
      const [mine, effective] = await Promise.all([
        readPref(APPROVAL_KEY, 'user', signal),
        project ? api.get<{ effective: Record<string, unknown> }>(`/v1/prefs/effective${qs({ project_id: project, include_sources: false })}`, signal).then((r) => r.effective[APPROVAL_KEY]) : Promise.resolve<unknown>('never'),
      ]);
      return { mine, effective };
    },
    [project],
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const toast = useUi((s) => s.toast);
  const current = state.data ? (state.data.mine.version > 0 ? state.data.mine.value : state.data.effective) : undefined;
  const on = current === 'mutating';
  const flip = async () => {
    if (!state.data) return;
    setBusy(true);
    setError(null);
    try {
      const mine = await writePref(APPROVAL_KEY, 'user', on ? 'never' : 'mutating', state.data.mine.version);
      state.setData({ ...state.data, mine });
      toast(on ? 'The agent acts without asking' : 'The agent asks before changing things');
    } catch (err) {
      setError(conflictText(err));
      state.reload();
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="agent-setting">
      <div className="card-head">
        <h3 id="agent-approval">Agent asks before changing things</h3>
        <button type="button" role="switch" className="switch" aria-checked={on} aria-labelledby="agent-approval" disabled={!state.data || busy} onClick={() => void flip()}>
          <span className="switch-knob" aria-hidden="true" />
          <span className="switch-text">{on ? 'On' : 'Off'}</span>
        </button>
      </div>
      <p className="muted small">
        On: each tool call that creates, cancels or changes something waits for your approval (<code>{APPROVAL_KEY}</code> = <code>mutating</code>). Off: the agent runs them. Reading is
        never held.
      </p>
      {state.error && <ErrorNote error={state.error} onRetry={state.reload} />}
      {error && <ErrorNote error={error} />}
    </div>
  );
}

/** The admin's choice of the model behind the agent, for everyone (system scope); automatic = null. */
function ModelChoice() {
  const state = useLoad(async (signal) => {
    const [pref, models] = await Promise.all([readPref(MODEL_KEY, 'system', signal), api.get<{ data: Model[] }>('/v1/models', signal)]);
    return { pref, models: models.data.map((m) => m.id).filter((id) => id !== PM_MODEL) };
  }, []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const toast = useUi((s) => s.toast);
  const choose = async (model: string) => {
    if (!state.data) return;
    setBusy(true);
    setError(null);
    try {
      const pref = await writePref(MODEL_KEY, 'system', model === '' ? null : model, state.data.pref.version);
      state.setData({ ...state.data, pref });
      toast(model === '' ? 'CyNode chooses the agent’s model' : `The agent uses ${model}`);
    } catch (err) {
      setError(conflictText(err));
      state.reload();
    } finally {
      setBusy(false);
    }
  };
  return (
    <Loadable state={state} label="Loading the agent's model">
      {(s) => {
        const chosen = typeof s.pref.value === 'string' ? s.pref.value : '';
        const options = chosen !== '' && !s.models.includes(chosen) ? [...s.models, chosen] : s.models;
        return (
          <div className="agent-setting">
            <label>
              Agent model (for everyone)
              <select aria-label="Agent model" value={chosen} disabled={busy} onChange={(e) => void choose(e.target.value)}>
                <option value="">Automatic: the first served model that can call tools</option>
                {options.map((id) => (
                  <option key={id} value={id}>
                    {id}
                    {s.models.includes(id) ? '' : ' (not served now)'}
                  </option>
                ))}
              </select>
            </label>
            <p className="muted small">
              The model needs Ollama&apos;s <code>tools</code> capability; one without it makes the agent answer that no model is available.
            </p>
            {error && <ErrorNote error={error} />}
          </div>
        );
      }}
    </Loadable>
  );
}
