import { useState } from 'react';
import { api, enc, qs } from '../../api/client';
import type { ConnectorHistoryRow } from '../../api/types';
import { Empty, Loadable, StatusBadge, Time, useLoad } from '../common';

/** The instance's operation history, newest first, paged. `tick` reloads it after a run. */
export function History({ connectorId, tick }: { connectorId: string; tick: number }) {
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages.at(-1);
  const rows = useLoad(
    (signal) => api.get<{ operations: ConnectorHistoryRow[]; next_cursor?: string }>(`/v1/connectors/${enc(connectorId)}/operations${qs({ limit: 20, cursor })}`, signal),
    [connectorId, cursor, tick],
  );
  return (
    <Loadable state={rows} label="Loading history">
      {(page) =>
        page.operations.length === 0 ? (
          <Empty title="No calls yet" />
        ) : (
          <>
            <table className="table" aria-label="History">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Operation</th>
                  <th>Outcome</th>
                  <th className="hide-narrow">Duration</th>
                  <th className="hide-narrow">Provider</th>
                </tr>
              </thead>
              <tbody>
                {page.operations.map((o) => (
                  <tr key={o.id}>
                    <td>
                      <Time iso={o.created_at} />
                    </td>
                    <td>
                      <code>{o.operation}</code>
                      {o.retries > 0 && <div className="muted small">{o.retries} retries</div>}
                    </td>
                    <td>
                      <StatusBadge status={o.decision === 'deny' ? 'deny' : o.outcome} />
                      {o.failure_class && <span className="muted small"> {o.failure_class}</span>}
                      {o.message && <div className="muted small">{o.message}</div>}
                    </td>
                    <td className="hide-narrow">{o.duration_ms !== null ? `${o.duration_ms} ms` : '—'}</td>
                    <td className="hide-narrow">{o.provider_status ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div className="row">
              <button type="button" className="btn small" disabled={pages.length === 0} onClick={() => setPages(pages.slice(0, -1))}>
                ← Newer
              </button>
              <button type="button" className="btn small" disabled={!page.next_cursor} onClick={() => page.next_cursor && setPages([...pages, page.next_cursor])}>
                Older →
              </button>
            </div>
          </>
        )
      }
    </Loadable>
  );
}
