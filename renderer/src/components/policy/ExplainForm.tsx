import { useState } from 'react';
import { api } from '../../api/client';
import type { Connector, ConnectorType, Explanation, ExplainResource, Group, Model, PolicyActionName, User } from '../../api/types';
import { ErrorNote, StatusBadge, useFormSubmit, useLoad } from '../common';

/** The actions the engine is asked about (the gateway's enum; the compiler keeps this list in step). */
const ACTIONS = ['model.use', 'connector.invoke', 'connector.install', 'connector.manage', 'tool.call'] as const satisfies readonly PolicyActionName[];
type Missing = Exclude<PolicyActionName, (typeof ACTIONS)[number]>;
const _everyAction: [Missing] extends [never] ? true : Missing = true;
void _everyAction;

interface Target {
  model: string;
  connectorId: string;
  connectorType: string;
  ownerUser: string;
  ownerGroup: string;
  operation: string;
  tool: string;
  toolReadOnly: boolean;
}

function resourceOf(action: PolicyActionName, t: Target): ExplainResource {
  if (action === 'model.use') return { type: 'Model', id: t.model.trim() };
  if (action === 'tool.call') return { type: 'Tool', id: t.tool.trim(), read_only: t.toolReadOnly };
  const connector = { id: t.connectorId.trim() || 'hypothetical', type: t.connectorType, ...(t.ownerUser ? { owner_user: t.ownerUser } : {}), ...(t.ownerGroup ? { owner_group: t.ownerGroup } : {}) };
  if (action === 'connector.invoke') return { type: 'Operation', name: t.operation.trim(), connector };
  return { type: 'Connector', connector };
}

function Outcome({ e }: { e: Explanation }) {
  return (
    <div className={`card notice ${e.decision === 'allow' ? 'ok' : 'warn'}`} role="status" aria-label="Decision">
      <div className="row">
        <StatusBadge status={e.decision} />
        <span>
          for <strong>{e.subject.handle}</strong>
          {e.subject.roles.length > 0 && <span className="muted small"> (roles {e.subject.roles.join(', ')})</span>}
        </span>
      </div>
      <div className="small">
        Determined by: {e.rules.length > 0 ? e.rules.map((r) => <code key={r}>{r} </code>) : <span className="muted">no rule</span>}
      </div>
      {e.reason && <div className="small">{e.reason}</div>}
      <div className="muted small">Considered: {e.considered.length > 0 ? e.considered.join(', ') : 'none'}</div>
      {e.passes.length > 1 &&
        e.passes.map((p) => (
          <div key={p.who} className="small">
            As {p.who}: {p.decision} {p.rules.join(', ')} {p.reason ?? ''}
          </div>
        ))}
    </div>
  );
}

/** "What would the rules decide if this user asked for this?" — nothing is done or audited. */
export function ExplainForm() {
  const users = useLoad((signal) => api.get<{ users: User[] }>('/v1/users?limit=200', signal).then((r) => r.users.filter((u) => !u.is_system)), []);
  const groups = useLoad((signal) => api.get<{ groups: Group[] }>('/v1/groups?limit=200', signal).then((r) => r.groups), []);
  const models = useLoad((signal) => api.get<{ data: Model[] }>('/v1/models', signal).then((r) => r.data), []);
  const catalog = useLoad((signal) => api.get<{ types: ConnectorType[] }>('/v1/connectors/catalog', signal).then((r) => r.types), []);
  const mine = useLoad((signal) => api.get<{ connectors: Connector[] }>('/v1/connectors?limit=200', signal).then((r) => r.connectors), []);
  const [userId, setUserId] = useState('');
  const [action, setAction] = useState<PolicyActionName>('model.use');
  const [t, setT] = useState<Target>({ model: '', connectorId: '', connectorType: '', ownerUser: '', ownerGroup: '', operation: '', tool: '', toolReadOnly: false });
  const [result, setResult] = useState<Explanation | null>(null);
  const subject = userId || users.data?.[0]?.id || '';
  const type = t.connectorType || catalog.data?.[0]?.type || '';
  const { error, onSubmit } = useFormSubmit(async () => {
    setResult(null);
    setResult(await api.post<Explanation>('/v1/policy/explain', { subject: { user_id: subject }, action, resource: resourceOf(action, { ...t, connectorType: type }) }));
  });
  const pickInstance = (id: string) => {
    const c = mine.data?.find((x) => x.id === id);
    if (!c) return;
    setT({ ...t, connectorId: c.id, connectorType: c.type, ownerUser: c.owner.type === 'user' ? c.owner.id : '', ownerGroup: c.owner.type === 'group' ? c.owner.id : '' });
  };
  const ops = catalog.data?.find((x) => x.type === type)?.operations ?? [];
  return (
    <>
      <form className="card form" onSubmit={onSubmit} aria-label="Explain a decision">
        <div className="row wrap">
          <label className="grow">
            User
            <select value={subject} onChange={(e) => setUserId(e.target.value)} required>
              {users.data?.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.handle}
                </option>
              ))}
            </select>
          </label>
          <label className="grow">
            Action
            <select value={action} onChange={(e) => setAction(e.target.value as PolicyActionName)}>
              {ACTIONS.map((a) => (
                <option key={a} value={a}>
                  {a}
                </option>
              ))}
            </select>
          </label>
        </div>
        {action === 'model.use' ? (
          <label>
            Model
            <input list="explain-models" value={t.model} onChange={(e) => setT({ ...t, model: e.target.value })} required placeholder="llama3:8b" />
            <datalist id="explain-models">{models.data?.map((m) => <option key={m.id} value={m.id} />)}</datalist>
          </label>
        ) : action === 'tool.call' ? (
          <div className="row wrap">
            <label className="grow">
              Tool of the MCP server
              <input value={t.tool} onChange={(e) => setT({ ...t, tool: e.target.value })} required placeholder="task.create" />
            </label>
            <label>
              <input type="checkbox" checked={t.toolReadOnly} onChange={(e) => setT({ ...t, toolReadOnly: e.target.checked })} /> Read-only tool
            </label>
          </div>
        ) : (
          <div className="row wrap">
            {(mine.data?.length ?? 0) > 0 && (
              <label className="grow">
                One of your connectors
                <select value="" onChange={(e) => pickInstance(e.target.value)}>
                  <option value="">—</option>
                  {mine.data?.map((c) => (
                    <option key={c.id} value={c.id}>
                      {c.name} ({c.type})
                    </option>
                  ))}
                </select>
              </label>
            )}
            <label className="grow">
              Connector id
              <input value={t.connectorId} onChange={(e) => setT({ ...t, connectorId: e.target.value })} placeholder="any id, for a hypothetical instance" />
            </label>
            <label>
              Type
              <select value={type} onChange={(e) => setT({ ...t, connectorType: e.target.value })}>
                {catalog.data?.map((c) => (
                  <option key={c.type} value={c.type}>
                    {c.type}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Owner user
              <select value={t.ownerUser} onChange={(e) => setT({ ...t, ownerUser: e.target.value })}>
                <option value="">—</option>
                {users.data?.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.handle}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Owner group
              <select value={t.ownerGroup} onChange={(e) => setT({ ...t, ownerGroup: e.target.value })}>
                <option value="">—</option>
                {groups.data?.map((g) => (
                  <option key={g.id} value={g.id}>
                    {g.slug}
                  </option>
                ))}
              </select>
            </label>
            {action === 'connector.invoke' && (
              <label>
                Operation
                <input list="explain-ops" value={t.operation} onChange={(e) => setT({ ...t, operation: e.target.value })} required />
                <datalist id="explain-ops">{ops.map((o) => <option key={o.name} value={o.name} />)}</datalist>
              </label>
            )}
          </div>
        )}
        {error && <ErrorNote error={error} />}
        <div className="row">
          <button type="submit" className="btn primary" disabled={!subject}>
            Explain
          </button>
        </div>
      </form>
      {result && <Outcome e={result} />}
    </>
  );
}
