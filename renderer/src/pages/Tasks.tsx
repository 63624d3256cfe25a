import { useEffect, useRef, useState, type FormEvent } from 'react';
import { api, enc, errorText, gateway, ok, qs, stream } from '../api/client';
import { TASK_STATUSES, type InputMode, type Model, type Task, type TaskLogLine, type TaskResult, type TaskStatus } from '../api/types';
import { ActionButton, Empty, ErrorNote, Loadable, PageHeader, Spinner, StatusBadge, Time, useLoad } from '../components/common';
import { Link } from '../components/Layout';
import { ProjectPicker, useProject } from '../components/ProjectPicker';
import { useUi } from '../store/ui';

const MODES: Array<{ mode: InputMode; label: string; hint: string; placeholder: string }> = [
  { mode: 'prompt', label: 'Prompt', hint: 'Answered by a model', placeholder: 'Summarise the release notes of…' },
  { mode: 'commands', label: 'Commands', hint: 'One shell command per line, in a sandbox', placeholder: 'echo hello\nuname -a' },
  { mode: 'script', label: 'Script', hint: 'A shell script run with sh, in a sandbox', placeholder: '#!/bin/sh\nfor i in 1 2 3; do echo "step $i"; done' },
];

const ACTIVE: TaskStatus[] = ['queued', 'running'];

export function TasksPage({ taskId }: { taskId?: string }) {
  return taskId ? <TaskDetail id={taskId} /> : <TaskList />;
}

function TaskList() {
  const { projectId, projects } = useProject();
  const [status, setStatus] = useState<TaskStatus | ''>('');
  const [creating, setCreating] = useState(false);
  const tasks = useLoad((signal) => api.get<{ tasks: Task[] }>(`/v1/tasks${qs({ status, project_id: projectId, limit: 100 })}`, signal).then((r) => r.tasks), [status, projectId], 3000);

  return (
    <div className="page">
      <PageHeader title="Tasks">
        <ProjectPicker projectId={projectId} projects={projects} />
        <button type="button" className="btn primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          + New task
        </button>
      </PageHeader>
      {creating && <NewTask projectId={projectId} onDone={() => setCreating(false)} />}
      <div className="filters" role="group" aria-label="Status filter">
        {(['', ...TASK_STATUSES] as Array<TaskStatus | ''>).map((s) => (
          <button key={s || 'all'} type="button" className={`chip-btn ${status === s ? 'active' : ''}`} aria-pressed={status === s} onClick={() => setStatus(s)}>
            {s || 'all'}
          </button>
        ))}
      </div>
      <Loadable state={tasks} label="Loading tasks">
        {(list) =>
          list.length === 0 ? (
            <Empty title={status ? `No ${status} tasks` : 'No tasks yet'}>Tasks run a prompt on a model, or commands and scripts in a sandbox on one of your nodes.</Empty>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Mode</th>
                  <th>Status</th>
                  <th className="hide-narrow">Created</th>
                  <th className="hide-narrow">Ended</th>
                </tr>
              </thead>
              <tbody>
                {list.map((t) => (
                  <tr key={t.id}>
                    <td>
                      <Link to={`/tasks/${t.id}`} className="strong">
                        {t.task_name}
                      </Link>
                      <div className="muted ellipsis small">{t.prompt.split('\n')[0]}</div>
                    </td>
                    <td>{t.input_mode}</td>
                    <td>
                      <StatusBadge status={t.status} />
                    </td>
                    <td className="hide-narrow">
                      <Time iso={t.created_at} />
                    </td>
                    <td className="hide-narrow">
                      <Time iso={t.ended_at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loadable>
    </div>
  );
}

function NewTask({ projectId, onDone }: { projectId: string | null; onDone(): void }) {
  const navigate = useUi((s) => s.navigate);
  const [mode, setMode] = useState<InputMode>('prompt');
  const [prompt, setPrompt] = useState('');
  const [name, setName] = useState('');
  const [model, setModel] = useState('');
  const [timeout, setTimeoutSeconds] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const models = useLoad((signal) => api.get<{ data: Model[] }>('/v1/models', signal).then((r) => r.data), []);
  const current = MODES.find((m) => m.mode === mode)!;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const task = await api.post<Task>('/v1/tasks', {
        prompt,
        input_mode: mode,
        ...(name.trim() ? { task_name: name.trim() } : {}),
        ...(projectId ? { project_id: projectId } : {}),
        ...(mode === 'prompt' && model ? { model } : {}),
        ...(timeout ? { timeout_seconds: Number(timeout) } : {}),
      });
      onDone();
      navigate(`/tasks/${task.id}`);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <form className="card form" onSubmit={submit} aria-label="New task">
      <div className="segmented" role="radiogroup" aria-label="Input mode">
        {MODES.map((m) => (
          <button key={m.mode} type="button" role="radio" aria-checked={mode === m.mode} className={mode === m.mode ? 'active' : ''} onClick={() => setMode(m.mode)}>
            {m.label}
          </button>
        ))}
      </div>
      <p className="muted small">{current.hint}</p>
      <label>
        {mode === 'prompt' ? 'Prompt' : mode === 'commands' ? 'Commands' : 'Script'}
        <textarea name="prompt" className="mono" rows={mode === 'prompt' ? 4 : 6} value={prompt} onChange={(e) => setPrompt(e.target.value)} placeholder={current.placeholder} required />
      </label>
      <div className="row wrap">
        <label className="grow">
          Name (optional)
          <input name="task_name" value={name} onChange={(e) => setName(e.target.value)} placeholder="derived from the prompt" />
        </label>
        {mode === 'prompt' && (
          <label className="grow">
            Model
            <select value={model} onChange={(e) => setModel(e.target.value)}>
              <option value="">First available</option>
              {models.data?.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          </label>
        )}
        <label>
          Timeout (s)
          <input type="number" min={1} max={10800} value={timeout} onChange={(e) => setTimeoutSeconds(e.target.value)} placeholder="600" />
        </label>
      </div>
      {error && <ErrorNote error={error} />}
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy || !prompt.trim()}>
          {busy ? 'Creating…' : 'Run task'}
        </button>
        <button type="button" className="btn ghost" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function TaskDetail({ id }: { id: string }) {
  const task = useLoad((signal) => ok(gateway.GET('/v1/tasks/{id}', { params: { path: { id } }, signal })), [id]);
  const [result, setResult] = useState<TaskResult | null>(null);
  const [lines, setLines] = useState<TaskLogLine[]>([]);
  const [live, setLive] = useState<'connecting' | 'live' | 'ended' | 'error'>('connecting');
  const logRef = useRef<HTMLPreElement>(null);
  const status = task.data?.status;
  const ended = status !== undefined && !ACTIVE.includes(status);

  // The live log tail from the ledger: every line so far, then new ones, then `done`.
  useEffect(() => {
    const ctl = new AbortController();
    setLines([]);
    setLive('connecting');
    const seen = new Set<string>();
    stream(`/v1/tasks/${enc(id)}/logs?follow=true`, {
      signal: ctl.signal,
      onEvent: (e) => {
        if (e.event === 'log') {
          const line = JSON.parse(e.data) as TaskLogLine;
          const key = `${line.run_id}:${line.seq}`;
          if (seen.has(key)) return;
          seen.add(key);
          setLive('live');
          setLines((l) => [...l, line]);
        } else if (e.event === 'done') {
          setLive('ended');
          task.reload();
        }
      },
    })
      .then(() => !ctl.signal.aborted && setLive('ended'))
      .catch(() => !ctl.signal.aborted && setLive('error'));
    return () => ctl.abort();
    // task.reload is stable
  }, [id, task.reload]);

  // Status until it ends (the stream says when, polling covers a stream that broke).
  useEffect(() => {
    if (ended || task.data === undefined) return;
    const t = setTimeout(task.reload, 2000);
    return () => clearTimeout(t);
  }, [ended, task.data, task.reload]);

  useEffect(() => {
    if (!ended) return;
    api
      .get<TaskResult>(`/v1/tasks/${enc(id)}/result`)
      .then(setResult)
      .catch(() => setResult(null));
  }, [ended, id, status]);

  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines]);

  return (
    <div className="page">
      <div className="crumbs">
        <Link to="/tasks">← Tasks</Link>
      </div>
      <Loadable state={task} label="Loading task">
        {(t) => (
          <>
            <PageHeader title={t.task_name}>
              <StatusBadge status={t.status} />
              {!t.closed && ACTIVE.includes(t.status) && (
                <ActionButton className="btn danger" confirm="Cancel this task? A running container is stopped." onAction={() => api.post(`/v1/tasks/${enc(t.id)}/cancel`).then(task.reload)}>
                  Cancel task
                </ActionButton>
              )}
            </PageHeader>
            <dl className="facts">
              <dt>Mode</dt>
              <dd>{t.input_mode}</dd>
              <dt>Created</dt>
              <dd>
                <Time iso={t.created_at} />
              </dd>
              <dt>Started</dt>
              <dd>
                <Time iso={t.started_at} />
              </dd>
              <dt>Ended</dt>
              <dd>
                <Time iso={t.ended_at} />
              </dd>
              {t.failure_reason && (
                <>
                  <dt>Failure</dt>
                  <dd className="danger-text">{t.failure_reason}</dd>
                </>
              )}
            </dl>
            <h2>Input</h2>
            <pre className="code">{t.prompt}</pre>
            <h2>
              Log <span className={`live-dot ${live}`} aria-label={`log ${live}`} /> <span className="muted small">{live === 'live' || live === 'connecting' ? (ended ? '' : 'live') : live === 'error' ? 'stream interrupted' : ''}</span>
            </h2>
            <pre className="code log" ref={logRef} data-testid="log-tail">
              {lines.length === 0 ? (
                <span className="muted">{ended ? 'No output.' : t.status === 'queued' ? 'Waiting for a node…' : 'Waiting for output…'}</span>
              ) : (
                lines.map((l) => (
                  <span key={`${l.run_id}:${l.seq}`} className={`log-line ${l.stream}`}>
                    {l.message}
                    {'\n'}
                  </span>
                ))
              )}
            </pre>
            {ended && (
              <>
                <h2>Result</h2>
                {result === null ? (
                  <Spinner label="Loading result" />
                ) : (
                  <div className="result" data-testid="task-result">
                    <p>
                      Exit code <strong>{result.exit_code ?? '—'}</strong>
                      {result.jobs.length > 0 && (
                        <span className="muted">
                          {' '}
                          · {result.jobs.length} job{result.jobs.length > 1 ? 's' : ''}, attempt {result.jobs.at(-1)?.attempt}
                          {result.jobs.at(-1)?.failure_code ? ` · ${result.jobs.at(-1)?.failure_code}` : ''}
                        </span>
                      )}
                    </p>
                    <h3>stdout</h3>
                    <pre className="code">{result.stdout || <span className="muted">(empty)</span>}</pre>
                    {result.stderr && (
                      <>
                        <h3>stderr</h3>
                        <pre className="code stderr">{result.stderr}</pre>
                      </>
                    )}
                  </div>
                )}
              </>
            )}
          </>
        )}
      </Loadable>
    </div>
  );
}
