import { useState, type FormEvent } from 'react';
import { api, errorText } from '../api/client';
import type { SystemInfo } from '../api/types';
import { CopyButton, ErrorNote, Loadable, PageHeader, useLoad } from '../components/common';
import { canOperate, useSession } from '../store/session';
import { useUi, type Theme } from '../store/ui';

export function SettingsPage() {
  const me = useSession((s) => s.me);
  const { theme, setTheme } = useUi();
  return (
    <div className="page narrow-page">
      <PageHeader title="Settings" />
      <section className="card">
        <h2>Appearance</h2>
        <div className="segmented" role="radiogroup" aria-label="Theme">
          {(['system', 'light', 'dark'] as Theme[]).map((t) => (
            <button key={t} type="button" role="radio" aria-checked={theme === t} className={theme === t ? 'active' : ''} onClick={() => setTheme(t)}>
              {t}
            </button>
          ))}
        </div>
      </section>
      {canOperate(me) && <System />}
      {me?.auth_method === 'session' && <ChangePassword />}
    </div>
  );
}

function System() {
  const info = useLoad((signal) => api.get<SystemInfo>('/v1/system/info', signal), []);
  return (
    <Loadable state={info} label="Loading system information">
      {(s) => (
        <>
          {s.initial_admin_password_file && (
            <div className="notice warn">
              The generated first-run password file (<code>{s.data_dir}/initial-admin-password</code>) is still there. Choose your own password below, then delete the file.
            </div>
          )}
          <section className="card">
            <h2>Share on LAN</h2>
            {s.gateway.shared_on_lan ? (
              <>
                <p>
                  <span className="badge status-active">on</span> Browsers and OpenAI clients on your network reach this CyNode at:
                </p>
                {s.gateway.lan_urls.map((u) => (
                  <div key={u} className="copy-row">
                    <code className="command">{u}</code>
                    <CopyButton text={u} />
                  </div>
                ))}
                <p className="muted small">
                  OpenAI base URL: <code>{s.gateway.lan_urls[0] ?? s.gateway.local_url}/v1</code> with an API key from Admin → API keys.
                </p>
              </>
            ) : (
              <>
                <p>
                  <span className="badge status-inactive">off</span> Only this machine can reach CyNode (<code>{s.gateway.local_url}</code>).
                </p>
                <p className="muted small">
                  To share it, restart with <code>CYNODE_HOST=0.0.0.0</code> (or <code>cynode serve --host 0.0.0.0</code>). Sign-in stays required for everyone.
                </p>
              </>
            )}
          </section>
          <section className="card">
            <h2>Storage</h2>
            <dl className="facts">
              <dt>Database</dt>
              <dd data-testid="database">
                {s.database.kind === 'pglite' ? 'Embedded (PGlite)' : 'PostgreSQL'} — <code>{s.database.description}</code>
              </dd>
              <dt>Data folder</dt>
              <dd>
                <code>{s.data_dir}</code> <CopyButton text={s.data_dir} />
              </dd>
              <dt>Local node</dt>
              <dd>{s.embedded_node ? 'runs with the orchestrator' : 'off (CYNODE_EMBEDDED_NODE=0)'}</dd>
              <dt>Version</dt>
              <dd>{s.version}</dd>
            </dl>
          </section>
        </>
      )}
    </Loadable>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const toast = useUi((s) => s.toast);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (next !== again) {
      setError('The new passwords differ');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.post('/v1/users/me/password', { current_password: current, new_password: next });
      toast('Password changed; your other sessions were signed out');
      setCurrent('');
      setNext('');
      setAgain('');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card form" onSubmit={submit} aria-label="Change password">
      <h2>Your password</h2>
      <label>
        Current password
        <input type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} required />
      </label>
      <label>
        New password
        <input type="password" autoComplete="new-password" minLength={8} value={next} onChange={(e) => setNext(e.target.value)} required />
      </label>
      <label>
        New password again
        <input type="password" autoComplete="new-password" minLength={8} value={again} onChange={(e) => setAgain(e.target.value)} required />
      </label>
      {error && <ErrorNote error={error} />}
      <button type="submit" className="btn primary" disabled={busy}>
        Change password
      </button>
    </form>
  );
}
