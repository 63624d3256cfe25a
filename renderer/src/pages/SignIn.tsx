import { useState, type FormEvent } from 'react';
import { errorText } from '../api/client';
import { useSession } from '../store/session';
import { ThemeToggle } from '../components/Layout';
import { Icon } from '../components/Icon';

export function SignIn() {
  const { signIn, error: sessionError } = useSession();
  const [handle, setHandle] = useState('admin');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(handle.trim(), password);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <div className="signin">
      <div className="signin-theme">
        <ThemeToggle />
      </div>
      <form className="card signin-card" onSubmit={submit} aria-label="Sign in">
        <div className="brand big">
          <span className="logo">
            <Icon name="logo" size={26} />
          </span>
          CyNode
        </div>
        <p className="muted">Your local AI orchestrator. Sign in to chat, run tasks and manage nodes.</p>
        {(error ?? sessionError) && <div className="error-note" role="alert">{error ?? sessionError}</div>}
        <label>
          User
          <input name="handle" autoComplete="username" value={handle} onChange={(e) => setHandle(e.target.value)} required autoFocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        <button className="btn primary" type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <details className="hint">
          <summary>First start? Where is the admin password?</summary>
          <p>
            CyNode never ships a default password. On the first start the <code>admin</code> password is the one given in <code>CYNODE_ADMIN_PASSWORD</code>, or a generated
            one printed once in the terminal and saved in <code>initial-admin-password</code> in the data folder (readable only by you). After signing in, the console asks
            you to choose your own.
          </p>
        </details>
      </form>
    </div>
  );
}
