import type { Connector } from '../../api/types';
import { Empty, StatusBadge, Time } from '../common';
import { Link } from '../Layout';
import { enc } from '../../api/client';

/** The caller's instances (own and shared through a group) with status and last error. */
export function InstanceList({ list }: { list: Connector[] }) {
  if (list.length === 0) return <Empty title="No connectors yet">Install one from the catalog below to reach a mailbox, a web API or an MCP server.</Empty>;
  return (
    <table className="table" aria-label="My connectors">
      <thead>
        <tr>
          <th>Name</th>
          <th>Type</th>
          <th>Status</th>
          <th className="hide-narrow">Last error</th>
          <th className="hide-narrow">Updated</th>
        </tr>
      </thead>
      <tbody>
        {list.map((c) => (
          <tr key={c.id}>
            <td>
              <Link to={`/connectors/${enc(c.id)}`}>
                <strong>{c.name}</strong>
              </Link>
              {c.owner.type === 'group' && <div className="muted small">shared by a group</div>}
            </td>
            <td>
              <code>{c.type}</code>
            </td>
            <td>
              <StatusBadge status={c.status} />
            </td>
            <td className="hide-narrow small">{c.last_error ?? <span className="muted">—</span>}</td>
            <td className="hide-narrow">
              <Time iso={c.updated_at} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
