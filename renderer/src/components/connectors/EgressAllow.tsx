import { useState } from 'react';
import { ApiError, api, errorText } from '../../api/client';
import type { EgressAllow as EgressAllowList } from '../../api/types';
import { Loadable, Time, useLoad } from '../common';

/**
 * Admins: the destinations connectors may reach although they are loopback, link-local or
 * private (an installation's own services), beyond what `CYNODE_CONNECTOR_ALLOW` opens. One entry
 * per line; the gateway checks each and names the one it cannot read.
 */
export function EgressAllow() {
  const list = useLoad((signal) => api.get<EgressAllowList>('/v1/connectors/egress-allow', signal), []);
  return (
    <Loadable state={list} label="Loading the allow list">
      {(current) => <EgressAllowForm key={current.updated_at} current={current} onSaved={list.setData} />}
    </Loadable>
  );
}

function EgressAllowForm({ current, onSaved }: { current: EgressAllowList; onSaved(list: EgressAllowList): void }) {
  const [text, setText] = useState(current.entries.join('\n'));
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async () => {
    setBusy(true);
    setProblem(null);
    try {
      const entries = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
      onSaved(await api.put<EgressAllowList>('/v1/connectors/egress-allow', { entries }));
    } catch (err) {
      setProblem(err instanceof ApiError ? err.message : errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      className="form"
      aria-label="Egress allow list"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <p className="muted small">
        Connectors refuse loopback, link-local and private addresses unless listed here: host names, <code>*.domain</code>, addresses and CIDRs, one per line.
        {current.entries.length > 0 && (
          <>
            {' '}
            Last changed <Time iso={current.updated_at} />.
          </>
        )}
      </p>
      <label>
        Allowed destinations
        <textarea className="mono" rows={4} value={text} onChange={(e) => setText(e.target.value)} spellCheck={false} />
      </label>
      {problem && (
        <div className="error-note" role="alert" aria-label="Problem">
          <span>{problem}</span>
        </div>
      )}
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save allow list'}
        </button>
      </div>
    </form>
  );
}
