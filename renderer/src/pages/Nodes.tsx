import { useRef, useState, type FormEvent } from 'react';
import { api, enc, errorText, gateway, ok, stream } from '../api/client';
import type { JoinInfo, NodeInfo, PullProgress } from '../api/types';
import { ActionButton, CopyButton, Empty, ErrorNote, Loadable, PageHeader, Time, bytes, useLoad } from '../components/common';
import { useUi } from '../store/ui';

export function NodesPage() {
  const nodes = useLoad((signal) => api.get<{ nodes: NodeInfo[] }>('/v1/nodes', signal).then((r) => r.nodes), [], 5000);
  const [adding, setAdding] = useState(false);
  return (
    <div className="page">
      <PageHeader title="Nodes">
        <button type="button" className="btn primary" onClick={() => setAdding(!adding)} aria-expanded={adding}>
          + Add a node
        </button>
      </PageHeader>
      {adding && <AddNode />}
      <Loadable state={nodes} label="Loading nodes">
        {(list) =>
          list.length === 0 ? (
            <Empty title="No nodes">Without a node nothing runs. Start CyNode with its embedded node, or add a machine with “Add a node”.</Empty>
          ) : (
            <div className="node-grid">
              {list.map((n) => (
                <NodeCard key={n.id} node={n} onChange={nodes.reload} />
              ))}
            </div>
          )
        }
      </Loadable>
    </div>
  );
}

function AddNode() {
  const join = useLoad((signal) => ok(gateway.GET('/v1/nodes/join', { signal })), []);
  const [reveal, setReveal] = useState(false);
  return (
    <section className="card add-node" aria-label="Add a node">
      <h2>Add a node</h2>
      <p className="muted">
        On the machine that should join (Linux with Docker or Podman, a checkout of CyNode built with <code>npm run build</code> and <code>build/sandbox-image.sh</code>), run:
      </p>
      <Loadable state={join} label="Loading the join key">
        {(j) => (
          <>
            <div className="copy-row">
              <code className="command" data-testid="join-command">
                {reveal ? j.join_command : j.join_command.replace(j.psk, '•'.repeat(12))}
              </code>
              <CopyButton text={j.join_command} label="Copy command" />
            </div>
            <div className="row wrap">
              <span className="muted small">
                Join key ({j.source === 'environment' ? 'set by CYNODE_NODE_PSK' : 'generated'}):
              </span>
              <code className="small">{reveal ? j.psk : '•'.repeat(12)}</code>
              <button type="button" className="btn small ghost" onClick={() => setReveal(!reveal)}>
                {reveal ? 'Hide' : 'Show'}
              </button>
              <CopyButton text={j.psk} label="Copy key" />
              {j.source === 'generated' && (
                <ActionButton className="btn small ghost" confirm="Rotate the join key? Nodes already joined keep working; the old key stops admitting new ones." onAction={() => api.post<JoinInfo>('/v1/nodes/join/rotate').then(join.setData)}>
                  Rotate key
                </ActionButton>
              )}
            </div>
            {/^http:\/\/(127\.|localhost|\[::1\])/.test(j.control_plane_url) && (
              <div className="notice warn">
                The control plane listens on loopback only, so other machines cannot reach it. Start CyNode with <code>CYNODE_HOST=0.0.0.0</code> (see Settings) to let nodes join over the LAN.
              </div>
            )}
          </>
        )}
      </Loadable>
    </section>
  );
}

function NodeCard({ node: n, onChange }: { node: NodeInfo; onChange(): void }) {
  const c = n.capability_summary ?? {};
  const act = (verb: string) => api.post(`/v1/nodes/${enc(n.id)}/${verb}`).then(onChange);
  const models = c.models ?? [];
  return (
    <article className="card node" aria-label={`Node ${n.node_slug}`} data-node={n.node_slug}>
      <header className="node-head">
        <span className={`dot ${n.status === 'active' ? (n.dispatchable ? 'ok' : 'warn') : 'bad'}`} aria-hidden="true" />
        <div className="grow">
          <h2>{n.display_name ?? n.node_slug}</h2>
          <div className="muted small">
            {n.labels.includes('orchestrator_host') ? 'This machine · ' : ''}last seen <Time iso={n.last_seen_at} />
          </div>
        </div>
        <span className={`badge status-${n.status}`} data-testid="node-status">
          {n.status}
        </span>
        {n.admin_state !== 'enabled' && <span className="badge status-warn">{n.admin_state}</span>}
      </header>
      <dl className="facts compact">
        <dt>System</dt>
        <dd>
          {c.os ?? '?'} / {c.arch ?? '?'} · {c.cpu_cores ?? '?'} cores · {c.ram_mb ? bytes(c.ram_mb * 1024 * 1024) : '?'} RAM{c.gpu_present ? ' · GPU' : ''}
        </dd>
        <dt>Sandboxes</dt>
        <dd>{c.sandbox_supported ? `yes (${c.container_runtime ?? 'container engine'})` : 'no container engine'}</dd>
        <dt>Inference</dt>
        <dd>{c.inference_running ? 'Ollama running' : 'not running'}</dd>
        <dt>Jobs</dt>
        <dd>
          <meter min={0} max={Math.max(1, n.max_concurrency)} value={n.running_jobs} aria-label="Running jobs" /> {n.running_jobs} of {n.max_concurrency} running
        </dd>
        {!n.dispatchable && n.status === 'active' && (
          <>
            <dt>Why idle</dt>
            <dd className="warn-text">{n.admin_state !== 'enabled' ? `the node is ${n.admin_state}` : n.config_ack_status !== 'applied' ? `configuration ${n.config_ack_status ?? 'pending'}` : 'not dispatchable'}</dd>
          </>
        )}
      </dl>
      <div className="models">
        <div className="muted small">Models</div>
        {models.length === 0 ? (
          <span className="muted small">none</span>
        ) : (
          <ul className="chips">
            {models.map((m) => (
              <li key={m} className="chip">
                {m}
                <ActionButton className="chip-x" title={`Delete ${m}`} confirm={`Delete ${m} from ${n.node_slug}?`} onAction={() => api.del(`/v1/nodes/${enc(n.id)}/models/${enc(m)}`).then(onChange)}>
                  ×
                </ActionButton>
              </li>
            ))}
          </ul>
        )}
        {c.inference_running && <PullModel nodeId={n.id} onDone={onChange} />}
      </div>
      <footer className="row wrap">
        {n.admin_state === 'enabled' ? (
          <>
            <ActionButton className="btn small" onAction={() => act('drain')} title="Finish running jobs, take no new ones">
              Drain
            </ActionButton>
            <ActionButton className="btn small" onAction={() => act('disable')}>
              Disable
            </ActionButton>
          </>
        ) : (
          <ActionButton className="btn small" onAction={() => act('enable')}>
            Enable
          </ActionButton>
        )}
        <ActionButton className="btn small danger ghost" confirm={`Remove ${n.node_slug}? It loses its credentials; a running node registers again as a new one.`} onAction={() => api.del(`/v1/nodes/${enc(n.id)}`).then(onChange)}>
          Remove
        </ActionButton>
      </footer>
    </article>
  );
}

function PullModel({ nodeId, onDone }: { nodeId: string; onDone(): void }) {
  const [name, setName] = useState('');
  const [progress, setProgress] = useState<PullProgress | null>(null);
  const [error, setError] = useState<string | null>(null);
  const ctl = useRef<AbortController | null>(null);
  const toast = useUi((s) => s.toast);

  const pull = async (e: FormEvent) => {
    e.preventDefault();
    const model = name.trim();
    if (!model) return;
    setError(null);
    setProgress({ status: 'starting' });
    const c = new AbortController();
    ctl.current = c;
    try {
      let failed: string | null = null;
      await stream(`/v1/nodes/${enc(nodeId)}/models`, {
        method: 'POST',
        body: { model },
        signal: c.signal,
        onEvent: (ev) => {
          const d = JSON.parse(ev.data) as PullProgress & { message?: string };
          if (ev.event === 'progress') setProgress(d);
          else if (ev.event === 'error') failed = d.message ?? 'The pull failed';
          else if (ev.event === 'done') setProgress({ status: 'success', percent: 100 });
        },
      });
      if (failed) throw new Error(failed);
      toast(`${model} is on the node`);
      setName('');
      onDone();
      setTimeout(onDone, 3000); // the node reports it with its next heartbeat
    } catch (err) {
      if (!c.signal.aborted) setError(errorText(err));
    } finally {
      ctl.current = null;
      setProgress(null);
    }
  };

  const pct = progress?.percent ?? (progress?.total ? Math.round(((progress.completed ?? 0) / progress.total) * 100) : undefined);
  return (
    <form className="pull" onSubmit={pull}>
      {progress ? (
        <div className="pull-progress">
          <progress max={100} value={pct} aria-label="Pull progress" />
          <span className="small muted">
            {progress.status}
            {pct !== undefined ? ` · ${pct}%` : ''}
            {progress.total ? ` · ${bytes(progress.completed ?? 0)} of ${bytes(progress.total)}` : ''}
          </span>
          <button type="button" className="btn small ghost" onClick={() => ctl.current?.abort()}>
            Stop
          </button>
        </div>
      ) : (
        <div className="row">
          <input aria-label="Model to pull" placeholder="llama3.2:3b" value={name} onChange={(e) => setName(e.target.value)} />
          <button type="submit" className="btn small" disabled={!name.trim()}>
            Pull
          </button>
        </div>
      )}
      {error && <ErrorNote error={error} />}
    </form>
  );
}
