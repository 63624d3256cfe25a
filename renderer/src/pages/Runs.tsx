import { useEffect, useRef, useState } from 'react';
import { api, enc, gateway, ok, qs, stream } from '../api/client';
import type { Run, RunEvent, Session } from '../api/types';
import { Empty, ErrorNote, Loadable, PageHeader, Spinner, StatusBadge, Time, useLoad } from '../components/common';
import { Link } from '../components/Layout';

export function RunsPage({ runId }: { runId?: string }) {
  const sessions = useLoad((signal) => api.get<{ sessions: Session[] }>('/v1/sessions?limit=200', signal).then((r) => r.sessions), [], 10_000);
  const runs = useLoad((signal) => api.get<{ runs: Run[] }>(`/v1/runs${qs({ limit: 50 })}`, signal).then((r) => r.runs), [], 5000);
  const roots = sessions.data?.filter((s) => !s.parent_session_id || !sessions.data?.some((p) => p.id === s.parent_session_id)) ?? [];
  return (
    <div className={`page split ${runId ? 'has-detail' : ''}`}>
      <div className="split-list">
        <PageHeader title="Runs & sessions" />
        <h2 className="section-title">Sessions</h2>
        <Loadable state={sessions} label="Loading sessions">
          {(all) =>
            all.length === 0 ? (
              <Empty title="No sessions">Sessions group related tasks and runs (created through the API, e.g. by agents).</Empty>
            ) : (
              <ul className="tree" role="tree">
                {roots.map((s) => (
                  <SessionNode key={s.id} session={s} all={all} activeRun={runId} />
                ))}
              </ul>
            )
          }
        </Loadable>
        <h2 className="section-title">Recent runs</h2>
        <Loadable state={runs} label="Loading runs">
          {(list) => {
            const top = list.filter((r) => !r.parent_run_id);
            return top.length === 0 ? (
              <Empty title="No runs yet">Every task's job is a run; create a task to see one here.</Empty>
            ) : (
              <ul className="tree" role="tree">
                {top.map((r) => (
                  <RunNode key={r.id} run={r} activeRun={runId} />
                ))}
              </ul>
            );
          }}
        </Loadable>
      </div>
      <div className="split-detail">{runId ? <RunDetail id={runId} /> : <Empty title="Select a run">Its events stream here live.</Empty>}</div>
    </div>
  );
}

function SessionNode({ session, all, activeRun }: { session: Session; all: Session[]; activeRun?: string }) {
  const [open, setOpen] = useState(false);
  const children = all.filter((s) => s.parent_session_id === session.id);
  return (
    <li role="treeitem" aria-expanded={open}>
      <button type="button" className="tree-row" onClick={() => setOpen(!open)}>
        <span className="caret">{open ? '▾' : '▸'}</span>
        <span className="grow">{session.title || `Session ${session.id.slice(0, 8)}`}</span>
        <span className="muted small">
          <Time iso={session.created_at} />
        </span>
      </button>
      {open && (
        <ul role="group">
          {children.map((c) => (
            <SessionNode key={c.id} session={c} all={all} activeRun={activeRun} />
          ))}
          <SessionRuns id={session.id} activeRun={activeRun} />
        </ul>
      )}
    </li>
  );
}

function SessionRuns({ id, activeRun }: { id: string; activeRun?: string }) {
  const runs = useLoad((signal) => api.get<{ runs: Run[] }>(`/v1/sessions/${enc(id)}/runs?limit=100`, signal).then((r) => r.runs), [id]);
  if (runs.data === undefined) return <li>{runs.error ? <ErrorNote error={runs.error} /> : <Spinner />}</li>;
  const top = runs.data.filter((r) => !r.parent_run_id || !runs.data!.some((p) => p.id === r.parent_run_id));
  if (top.length === 0) return <li className="muted small tree-empty">No runs in this session</li>;
  return (
    <>
      {top.map((r) => (
        <RunNode key={r.id} run={r} activeRun={activeRun} />
      ))}
    </>
  );
}

function RunNode({ run, activeRun }: { run: Run; activeRun?: string }) {
  const [open, setOpen] = useState(false);
  const children = useLoad((signal) => (open ? api.get<{ runs: Run[] }>(`/v1/runs/${enc(run.id)}/children?limit=100`, signal).then((r) => r.runs) : Promise.resolve<Run[]>([])), [open, run.id]);
  return (
    <li role="treeitem" aria-expanded={open}>
      <div className={`tree-row ${activeRun === run.id ? 'active' : ''}`}>
        <button type="button" className="caret-btn" onClick={() => setOpen(!open)} aria-label={open ? 'Collapse sub-runs' : 'Show sub-runs'}>
          {open ? '▾' : '▸'}
        </button>
        <Link to={`/runs/${run.id}`} className="grow">
          {run.task_name ?? 'run'} <span className="muted">{run.id.slice(0, 8)}</span>
        </Link>
        <StatusBadge status={run.status} />
      </div>
      {open && (
        <ul role="group">
          {children.data === undefined ? (
            <li>
              <Spinner />
            </li>
          ) : children.data.length === 0 ? (
            <li className="muted small tree-empty">No sub-runs</li>
          ) : (
            children.data.map((c) => <RunNode key={c.id} run={c} activeRun={activeRun} />)
          )}
        </ul>
      )}
    </li>
  );
}

function RunDetail({ id }: { id: string }) {
  const run = useLoad((signal) => ok(gateway.GET('/v1/runs/{id}', { params: { path: { id } }, signal })), [id]);
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [state, setState] = useState<'connecting' | 'live' | 'ended' | 'reconnecting'>('connecting');
  const box = useRef<HTMLDivElement>(null);

  // Replay then live, resuming after the last seq on a dropped connection (the ledger's contract).
  useEffect(() => {
    const ctl = new AbortController();
    let last = 0;
    let done = false;
    setEvents([]);
    setState('connecting');
    const connect = async () => {
      while (!done && !ctl.signal.aborted) {
        try {
          await stream(`/v1/runs/${enc(id)}/events/stream${qs({ after: last })}`, {
            signal: ctl.signal,
            headers: last ? { 'last-event-id': String(last) } : {},
            onEvent: (e) => {
              if (e.event === 'run.event') {
                const { seq, event } = JSON.parse(e.data) as { seq: number; event: RunEvent };
                if (seq <= last) return;
                last = seq;
                setState('live');
                setEvents((list) => [...list, { ...event, seq }]);
              } else if (e.event === 'done') {
                done = true;
                setState('ended');
                run.reload();
              }
            },
          });
        } catch {
          // network or server error: retry below
        }
        if (!done && !ctl.signal.aborted) {
          setState('reconnecting');
          await new Promise((r) => setTimeout(r, 3000));
        }
      }
    };
    void connect();
    return () => ctl.abort();
  }, [id, run.reload]);

  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [events]);

  return (
    <Loadable state={run} label="Loading run">
      {(r) => (
        <div className="run-detail">
          <div className="crumbs only-narrow">
            <Link to="/runs">← Runs</Link>
          </div>
          <PageHeader title={`Run ${r.id.slice(0, 8)}`}>
            <StatusBadge status={r.status} />
          </PageHeader>
          <dl className="facts compact">
            <dt>Task</dt>
            <dd>{r.task_id === null ? 'none (a step of an agent turn)' : <Link to={`/tasks/${r.task_id}`}>{r.task_name ?? r.task_id.slice(0, 8)}</Link>}</dd>
            {r.parent_run_id && (
              <>
                <dt>Parent</dt>
                <dd>
                  <Link to={`/runs/${r.parent_run_id}`}>{r.parent_run_id.slice(0, 8)}</Link>
                </dd>
              </>
            )}
            {r.processes_running ? (
              <>
                <dt>Processes</dt>
                <dd>{r.processes_running} running in its sandbox</dd>
              </>
            ) : null}
            <dt>Started</dt>
            <dd>
              <Time iso={r.started_at ?? r.created_at} />
            </dd>
            <dt>Ended</dt>
            <dd>
              <Time iso={r.ended_at} />
            </dd>
            {r.error && (
              <>
                <dt>Error</dt>
                <dd className="danger-text">{r.error}</dd>
              </>
            )}
          </dl>
          <h2>
            Events <span className={`live-dot ${state}`} /> <span className="muted small">{state}</span>
          </h2>
          <div className="events" ref={box} data-testid="run-events">
            {events.length === 0 ? (
              <span className="muted">{state === 'ended' ? 'No events.' : 'Waiting for events…'}</span>
            ) : (
              events.map((e) => (
                <div key={e.seq} className={`event kind-${e.kind} ${e.stream ?? ''}`}>
                  <span className="seq">{e.seq}</span>
                  <span className="kind">{e.kind}</span>
                  <span className="msg">{describe(e)}</span>
                  <span className="ts muted">{new Date(e.created_at).toLocaleTimeString()}</span>
                </div>
              ))
            )}
          </div>
        </div>
      )}
    </Loadable>
  );
}

/** A status event reads as a sentence; anything else shows its message or its data. */
function describe(e: RunEvent): string {
  if (e.message) return e.message;
  const d = e.data as Record<string, unknown> | null | undefined;
  if (e.kind === 'status' && d && typeof d.status === 'string') {
    const parts = [d.status];
    if (typeof d.attempt === 'number') parts.push(`attempt ${d.attempt}`);
    if (typeof d.exit_code === 'number') parts.push(`exit code ${d.exit_code}`);
    if (typeof d.failure_code === 'string') parts.push(d.failure_code);
    if (typeof d.reason === 'string') parts.push(d.reason);
    return parts.join(' · ');
  }
  return d === null || d === undefined ? '' : JSON.stringify(d);
}
