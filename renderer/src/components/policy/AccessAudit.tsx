import { useState } from 'react';
import { api, qs } from '../../api/client';
import type { AccessDecision } from '../../api/types';
import { Empty, Loadable, StatusBadge, Time, useLoad } from '../common';

interface Filter {
  decision: string;
  action: string;
  rule: string;
}

/** Every access decision, allow and deny, newest first, with the rules that made it. */
export function AccessAudit() {
  const [filter, setFilter] = useState<Filter>({ decision: '', action: '', rule: '' });
  const [applied, setApplied] = useState(filter);
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages.at(-1);
  const page = useLoad(
    (signal) => api.get<{ decisions: AccessDecision[]; next_cursor?: string }>(`/v1/audit/access${qs({ limit: 50, decision: applied.decision, action: applied.action.trim(), rule: applied.rule.trim(), cursor })}`, signal),
    [applied, cursor],
  );
  return (
    <>
      <form
        className="card form row wrap"
        aria-label="Access audit filters"
        onSubmit={(e) => {
          e.preventDefault();
          setPages([]);
          setApplied(filter);
        }}
      >
        <label>
          Decision
          <select value={filter.decision} onChange={(e) => setFilter({ ...filter, decision: e.target.value })}>
            <option value="">any</option>
            <option value="allow">allow</option>
            <option value="deny">deny</option>
          </select>
        </label>
        <label className="grow">
          Action
          <input value={filter.action} onChange={(e) => setFilter({ ...filter, action: e.target.value })} placeholder="connector.invoke" />
        </label>
        <label className="grow">
          Rule
          <input value={filter.rule} onChange={(e) => setFilter({ ...filter, rule: e.target.value })} placeholder="a rule id" />
        </label>
        <button type="submit" className="btn primary align-end">
          Filter
        </button>
      </form>
      <Loadable state={page} label="Loading access decisions">
        {(p) =>
          p.decisions.length === 0 ? (
            <Empty title="No decisions match" />
          ) : (
            <>
              <table className="table" aria-label="Access decisions">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Decision</th>
                    <th>Who</th>
                    <th>Resource</th>
                    <th className="hide-narrow">Rules</th>
                  </tr>
                </thead>
                <tbody>
                  {p.decisions.map((d) => (
                    <tr key={d.id}>
                      <td>
                        <Time iso={d.at} />
                      </td>
                      <td>
                        <StatusBadge status={d.decision} /> {d.action}
                      </td>
                      <td>
                        {d.subject.handle ?? <span className="muted">—</span>}
                        {d.subject.agent_id && <div className="muted small">agent {d.subject.agent_role}</div>}
                      </td>
                      <td className="small">
                        {d.resource.type} <code>{d.resource.id.length > 40 ? `${d.resource.id.slice(0, 40)}…` : d.resource.id}</code>
                      </td>
                      <td className="hide-narrow small">{d.rules.length > 0 ? d.rules.join(', ') : <span className="muted">{d.reason ?? '—'}</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <div className="row">
                <button type="button" className="btn small" disabled={pages.length === 0} onClick={() => setPages(pages.slice(0, -1))}>
                  ← Newer
                </button>
                <button type="button" className="btn small" disabled={!p.next_cursor} onClick={() => p.next_cursor && setPages([...pages, p.next_cursor])}>
                  Older →
                </button>
              </div>
            </>
          )
        }
      </Loadable>
    </>
  );
}
