import { useState } from 'react';
import { api, enc } from '../../api/client';
import type { Connector, ConnectorCredential, CredentialKind } from '../../api/types';
import { useUi } from '../../store/ui';
import { SECRET_FIELDS } from './credential-fields';
import { ActionButton, Empty, ErrorNote, Loadable, StatusBadge, Time, useFormSubmit, useLoad } from '../common';

function isKind(k: string): k is CredentialKind {
  return k in SECRET_FIELDS;
}

/**
 * Fields for one secret. Inputs are password fields with autocomplete off, cleared after every
 * submit: the console keeps a secret only while it is typed, and no read ever answers it.
 */
function SecretForm({ kind, submitLabel, onSubmit, label }: { kind: CredentialKind; submitLabel: string; label: string; onSubmit(secret: Record<string, string>, expiresAt?: string): Promise<void> }) {
  const empty = () => Object.fromEntries(SECRET_FIELDS[kind].map((f) => [f.name, '']));
  const [secret, setSecret] = useState<Record<string, string>>(empty);
  const [expires, setExpires] = useState('');
  const { error, onSubmit: submit } = useFormSubmit(async () => {
    try {
      await onSubmit(secret, expires ? new Date(expires).toISOString() : undefined);
    } finally {
      setSecret(empty());
    }
    setExpires('');
  });
  return (
    <form className="form row wrap" onSubmit={submit} aria-label={label}>
      {SECRET_FIELDS[kind].map((f) => (
        <label key={f.name} className="grow">
          {f.label}
          <input type={f.secret ? 'password' : 'text'} value={secret[f.name] ?? ''} onChange={(e) => setSecret({ ...secret, [f.name]: e.target.value })} autoComplete={f.secret ? 'new-password' : 'off'} spellCheck={false} />
        </label>
      ))}
      <label>
        Expires (optional)
        <input type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} />
      </label>
      <button type="submit" className="btn primary align-end">
        {submitLabel}
      </button>
      {error && <ErrorNote error={error} />}
    </form>
  );
}

/** Write-only credentials of an instance: add, rotate, disable, revoke; only metadata is shown. */
export function Credentials({ connector, kinds, onChange }: { connector: Connector; kinds: string[]; onChange(): void }) {
  const base = `/v1/connectors/${enc(connector.id)}/credentials`;
  const list = useLoad((signal) => api.get<{ credentials: ConnectorCredential[] }>(base, signal).then((r) => r.credentials), [base]);
  const usable = kinds.filter(isKind);
  const [kind, setKind] = useState<CredentialKind | undefined>(usable[0]);
  const [rotating, setRotating] = useState<string | null>(null);
  const toast = useUi((s) => s.toast);
  const changed = () => {
    list.reload();
    onChange();
  };
  if (usable.length === 0) return <p className="muted small">This connector type takes no credentials.</p>;
  return (
    <>
      <Loadable state={list} label="Loading credentials">
        {(creds) =>
          creds.length === 0 ? (
            <Empty title="No credentials">Add one below; its secret is sealed for the connector executor and never shown again.</Empty>
          ) : (
            <table className="table" aria-label="Credentials">
              <thead>
                <tr>
                  <th>Kind</th>
                  <th>Version</th>
                  <th>Status</th>
                  <th className="hide-narrow">Added</th>
                  <th className="hide-narrow">Expires</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {creds.map((c) => (
                  <tr key={c.id}>
                    <td>
                      <code>{c.type}</code>
                      <div className="muted small">secret hidden</div>
                    </td>
                    <td>v{c.version}</td>
                    <td>
                      <StatusBadge status={c.status} />
                    </td>
                    <td className="hide-narrow">
                      <Time iso={c.rotated_at ?? c.created_at} />
                    </td>
                    <td className="hide-narrow">{c.expires_at ? <Time iso={c.expires_at} /> : <span className="muted">never</span>}</td>
                    <td className="actions">
                      {c.status !== 'revoked' && (
                        <>
                          <button type="button" className="btn small ghost" onClick={() => setRotating(rotating === c.id ? null : c.id)} aria-expanded={rotating === c.id}>
                            Rotate
                          </button>
                          {c.status === 'active' && (
                            <ActionButton className="btn small ghost" onAction={() => api.post(`${base}/${enc(c.id)}/disable`).then(changed)}>
                              Disable
                            </ActionButton>
                          )}
                          <ActionButton className="btn small danger ghost" confirm="Revoke this credential? Its secret is erased and the next call is refused." onAction={() => api.post(`${base}/${enc(c.id)}/revoke`).then(changed)}>
                            Revoke
                          </ActionButton>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Loadable>
      {rotating && list.data?.some((c) => c.id === rotating) && (
        <div className="card">
          <strong>New secret for the {list.data.find((c) => c.id === rotating)!.type} credential</strong>
          <SecretForm
            kind={list.data.find((c) => c.id === rotating)!.type}
            label="Rotate credential"
            submitLabel="Rotate"
            onSubmit={async (secret, expires_at) => {
              await api.post(`${base}/${enc(rotating)}/rotate`, { secret, ...(expires_at ? { expires_at } : {}) });
              setRotating(null);
              toast('Credential rotated: the next call uses the new secret');
              changed();
            }}
          />
        </div>
      )}
      <div className="card">
        <div className="row">
          <strong className="grow">Add a credential</strong>
          {usable.length > 1 && (
            <label>
              Kind
              <select value={kind} onChange={(e) => setKind(e.target.value as CredentialKind)}>
                {usable.map((k) => (
                  <option key={k} value={k}>
                    {k}
                  </option>
                ))}
              </select>
            </label>
          )}
        </div>
        {kind && (
          <SecretForm
            key={kind}
            kind={kind}
            label="Add credential"
            submitLabel="Add credential"
            onSubmit={async (secret, expires_at) => {
              await api.post(base, { type: kind, secret, ...(expires_at ? { expires_at } : {}) });
              toast('Credential added');
              changed();
            }}
          />
        )}
      </div>
    </>
  );
}
