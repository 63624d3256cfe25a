import { useState } from 'react';
import { api, enc } from '../../api/client';
import type { Connector, ConnectorType } from '../../api/types';
import { useSession } from '../../store/session';
import { useUi } from '../../store/ui';
import { ActionButton, ErrorNote, Loadable, PageHeader, StatusBadge, Time, useLoad } from '../common';
import { Link } from '../Layout';
import { Credentials } from './Credentials';
import { EditForm } from './EditForm';
import { History } from './History';
import { RunOperation } from './RunOperation';

/** One instance: its state and switches, credentials, a hand-run operation and its history. */
export function InstanceDetail({ id, catalog }: { id: string; catalog: ConnectorType[] }) {
  const path = `/v1/connectors/${enc(id)}`;
  const instance = useLoad((signal) => api.get<Connector>(path, signal), [path], 10_000);
  const [tick, setTick] = useState(0);
  const [editing, setEditing] = useState(false);
  const navigate = useUi((s) => s.navigate);
  const toast = useUi((s) => s.toast);
  const me = useSession((s) => s.me);
  const ran = () => {
    setTick((t) => t + 1);
    instance.reload();
  };
  return (
    <div className="page">
      <Loadable state={instance} label="Loading the connector">
        {(c) => {
          const type = catalog.find((t) => t.type === c.type);
          return (
            <>
              <PageHeader title={c.name}>
                <Link to="/connectors" className="btn ghost small">
                  ← Connectors
                </Link>
                <button type="button" className="btn small" onClick={() => setEditing(!editing)} aria-expanded={editing}>
                  Edit
                </button>
                {c.status === 'disabled' ? (
                  <ActionButton className="btn small" onAction={() => api.post<Connector>(`${path}/enable`).then(instance.setData)}>
                    Enable
                  </ActionButton>
                ) : (
                  <ActionButton className="btn small" onAction={() => api.post<Connector>(`${path}/disable`).then(instance.setData)}>
                    Disable
                  </ActionButton>
                )}
                <ActionButton
                  className="btn small danger ghost"
                  confirm={`Delete “${c.name}”? Its credentials are revoked; its history stays.`}
                  onAction={async () => {
                    await api.del(path);
                    toast(`${c.name} deleted`);
                    navigate('/connectors');
                  }}
                >
                  Delete
                </ActionButton>
              </PageHeader>
              <dl className="facts compact">
                <dt>Type</dt>
                <dd>
                  {type?.title ?? c.type} <code className="muted">{c.type}</code>
                </dd>
                <dt>Status</dt>
                <dd>
                  <StatusBadge status={c.status} />
                </dd>
                <dt>Owner</dt>
                <dd>{c.owner.type === 'group' ? `group ${c.owner.id.slice(0, 8)}` : c.owner.id === me?.id ? 'you' : `user ${c.owner.id.slice(0, 8)}`}</dd>
                <dt>Updated</dt>
                <dd>
                  <Time iso={c.updated_at} />
                </dd>
                <dt>Configuration</dt>
                <dd>
                  <code className="small">{JSON.stringify(c.config)}</code>
                </dd>
              </dl>
              {editing && (
                <EditForm
                  connector={c}
                  type={type}
                  onCancel={() => setEditing(false)}
                  onSaved={(next) => {
                    instance.setData(next);
                    setEditing(false);
                    toast('Connector saved');
                  }}
                />
              )}
              {c.last_error && <ErrorNote error={`Last error: ${c.last_error}`} />}
              <section className="section" aria-label="Credentials section">
                <h2>Credentials</h2>
                <Credentials connector={c} kinds={type?.credential_types ?? []} onChange={instance.reload} />
              </section>
              <section className="section" aria-label="Run an operation">
                <h2>Run an operation</h2>
                <div className="card">
                  <RunOperation connector={c} operations={type?.operations ?? []} discovered={type?.operations_discovered ?? false} onRan={ran} />
                </div>
              </section>
              <section className="section" aria-label="History section">
                <h2>History</h2>
                <History connectorId={c.id} tick={tick} />
              </section>
            </>
          );
        }}
      </Loadable>
    </div>
  );
}
