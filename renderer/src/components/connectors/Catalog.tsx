import type { ConnectorType } from '../../api/types';

/** The connector types CyNode offers (from its catalog), each with what it can do. */
export function Catalog({ types, onPick }: { types: ConnectorType[]; onPick(t: ConnectorType): void }) {
  return (
    <ul className="catalog" aria-label="Connector types">
      {types.map((t) => (
        <li key={t.type} className="card">
          <div className="row">
            <strong className="grow">{t.title}</strong>
            <code className="muted small">{t.type}</code>
          </div>
          <p className="muted small">{t.description}</p>
          <p className="small">
            {t.operations.length > 0 ? t.operations.map((o) => o.name).join(', ') : <span className="muted">operations come from the server</span>}
          </p>
          <button type="button" className="btn small" onClick={() => onPick(t)} aria-label={`Install ${t.title}`}>
            Install
          </button>
        </li>
      ))}
    </ul>
  );
}
