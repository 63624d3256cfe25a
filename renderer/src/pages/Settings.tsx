import { useState, type FormEvent } from 'react';
import { api, errorText, gateway, ok } from '../api/client';
import type { LanSharing, SystemInfo } from '../api/types';
import { AgentSettings } from '../components/AgentSettings';
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
      <AgentSettings />
      {canOperate(me) && <System />}
      {me?.auth_method === 'session' && <ChangePassword />}
    </div>
  );
}

function System() {
  const info = useLoad((signal) => ok(gateway.GET('/v1/system/info', { signal })), []);
  return (
    <Loadable state={info} label="Loading system information">
      {(s) => (
        <>
          {s.initial_admin_password_file && (
            <div className="notice warn">
              The generated first-run password file (<code>{s.data_dir}/initial-admin-password</code>) is still there: the generated password is still the admin password. Choose your own below; the file is deleted when you do.
            </div>
          )}
          <ShareOnLan info={s} onChange={(lan_sharing) => info.setData({ ...s, lan_sharing, gateway: { ...s.gateway, shared_on_lan: lan_sharing.enabled, lan_urls: lan_sharing.urls } })} />
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

/**
 * The "share on LAN" switch: effective at once (the gateway starts or stops listening on this
 * machine's LAN addresses), kept across restarts. Admins flip it; operators see it.
 */
function ShareOnLan({ info, onChange }: { info: SystemInfo; onChange(lan: LanSharing): void }) {
  const isAdmin = useSession((st) => st.isAdmin());
  const toast = useUi((st) => st.toast);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const lan = info.lan_sharing;
  const readOnly = lan.managed_by_env || !isAdmin;
  const flip = async () => {
    setBusy(true);
    setError(null);
    try {
      const next = await api.put<LanSharing>('/v1/system/lan-sharing', { enabled: !lan.enabled });
      onChange(next);
      toast(next.enabled ? 'Shared on the LAN' : 'No longer shared on the LAN');
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const first = lan.urls[0];
  return (
    <section className="card" aria-labelledby="share-on-lan">
      <div className="card-head">
        <h2 id="share-on-lan">Share on LAN</h2>
        <button
          type="button"
          role="switch"
          className="switch"
          aria-checked={lan.enabled}
          aria-labelledby="share-on-lan"
          disabled={readOnly || busy}
          onClick={() => void flip()}
          title={lan.managed_by_env ? 'Set by CYNODE_HOST' : !isAdmin ? 'Only admins can change this' : undefined}
        >
          <span className="switch-knob" aria-hidden="true" />
          <span className="switch-text">{lan.enabled ? 'On' : 'Off'}</span>
        </button>
      </div>
      {lan.enabled ? (
        first ? (
          <>
            <p>Browsers on your network open CyNode at:</p>
            {lan.urls.map((u) => (
              <div key={u} className="copy-row" data-testid="lan-url">
                <code className="command">{u}</code>
                <CopyButton text={u} />
              </div>
            ))}
            <p>OpenAI-compatible clients (Open WebUI, editors, the OpenAI SDK) use the base URL:</p>
            <div className="copy-row" data-testid="openai-base-url">
              <code className="command">{first}/v1</code>
              <CopyButton text={`${first}/v1`} />
            </div>
          </>
        ) : (
          <p>On, but this machine has no network address right now; CyNode listens on it as soon as it gets one.</p>
        )
      ) : (
        <p>
          Only this machine can reach CyNode (<code>{info.gateway.local_url}</code>). Turn this on to open it to browsers and OpenAI clients on your network, at once and
          after restarts.
        </p>
      )}
      <p className="muted small">
        Sign-in stays required for everyone: browsers sign in with a user and password; OpenAI clients need an API key (Admin → API keys) as their key. Traffic is plain HTTP, so
        share only on networks you trust.
      </p>
      {lan.managed_by_env && (
        <p className="muted small">
          Set by <code>CYNODE_HOST={info.gateway.bind_host}</code> (or <code>--host</code>): change or unset it and restart to use this switch.
        </p>
      )}
      {!lan.managed_by_env && !isAdmin && <p className="muted small">Only admins can change this.</p>}
      {error && <ErrorNote error={error} />}
    </section>
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
