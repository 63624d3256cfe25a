import { useState, type FormEvent, type ReactNode } from 'react';
import { ApiError, errorText } from '../api/client';
import { getSetup, onLoopbackOrigin, setAdminPassword } from '../api/setup';
import { useSession } from '../store/session';
import { ThemeToggle } from '../components/Layout';
import { Icon } from '../components/Icon';
import { ErrorNote, Spinner, useLoad } from '../components/common';

export function SignIn() {
  const setup = useLoad((signal) => getSetup(signal), []);
  const pending = setup.data?.first_run_password_pending === true;
  // At the machine itself, a fresh install offers to choose the admin password instead.
  const [useGenerated, setUseGenerated] = useState(false);
  const choose = pending && onLoopbackOrigin() && !useGenerated;

  return (
    <div className="signin">
      <div className="signin-theme">
        <ThemeToggle />
      </div>
      {setup.loading && setup.data === undefined ? (
        <Card>
          <Spinner label="Loading" />
        </Card>
      ) : choose ? (
        <ChooseAdminPassword onUseGenerated={() => setUseGenerated(true)} onAlreadySet={setup.reload} />
      ) : (
        // Without the setup state, signing in still works: the form says so and carries on.
        <SignInForm firstRun={pending} setupError={setup.error} onRetrySetup={setup.reload} />
      )}
    </div>
  );
}

/** The sign-in card with the brand on top: a form when given `onSubmit`. */
function Card({ children, onSubmit, label }: { children: ReactNode; onSubmit?: (e: FormEvent) => void; label?: string }) {
  const brand = (
    <div className="brand big">
      <span className="logo">
        <Icon name="logo" size={26} />
      </span>
      CyNode
    </div>
  );
  if (!onSubmit) {
    return (
      <div className="card signin-card">
        {brand}
        {children}
      </div>
    );
  }
  return (
    <form className="card signin-card" onSubmit={onSubmit} aria-label={label}>
      {brand}
      {children}
    </form>
  );
}

function SignInForm({ firstRun, setupError, onRetrySetup }: { firstRun: boolean; setupError: string | null; onRetrySetup: () => void }) {
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
    <Card onSubmit={submit} label="Sign in">
      <p className="muted">Your local AI orchestrator. Sign in to chat, run tasks and manage nodes.</p>
      {setupError && <ErrorNote error={`Could not check first-run setup: ${setupError}`} onRetry={onRetrySetup} />}
      {firstRun && (
        <div className="notice" data-testid="first-run-hint">
          This CyNode was just installed. Sign in as <code>admin</code> with the password it generated: printed once in the terminal of the machine running CyNode, and saved there
          in <code>initial-admin-password</code> in its data folder (readable only by its owner). To choose your own instead, open this console on that machine
          (<code>http://localhost</code> and the same port).
        </div>
      )}
      {(error ?? sessionError) && (
        <div className="error-note" role="alert">
          {error ?? sessionError}
        </div>
      )}
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
      {!firstRun && (
        <details className="hint">
          <summary>First start? Where is the admin password?</summary>
          <p>
            CyNode never ships a default password. On the first start the <code>admin</code> password is the one given in <code>CYNODE_ADMIN_PASSWORD</code>, or a generated
            one printed once in the terminal and saved in <code>initial-admin-password</code> in the data folder (readable only by you). Until someone changes it, the console
            opened on that machine offers to choose your own.
          </p>
        </details>
      )}
    </Card>
  );
}

function ChooseAdminPassword({ onUseGenerated, onAlreadySet }: { onUseGenerated: () => void; onAlreadySet: () => void }) {
  const signIn = useSession((s) => s.signIn);
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (password !== again) {
      setError('The two passwords differ');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await setAdminPassword(password);
    } catch (err) {
      setBusy(false);
      // Somebody chose it meanwhile: back to signing in.
      if (err instanceof ApiError && err.status === 409) onAlreadySet();
      setError(errorText(err));
      return;
    }
    try {
      await signIn('admin', password);
    } catch (err) {
      setBusy(false);
      setError(`The password is set, but signing in failed: ${errorText(err)}`);
      onAlreadySet();
    }
  };

  return (
    <Card onSubmit={submit} label="Set the admin password">
      <h2>Set the admin password</h2>
      <p className="muted">
        Welcome to CyNode. Choose the password of the <code>admin</code> account (at least 8 characters). It replaces the one generated at first start, whose file is then
        deleted.
      </p>
      {error && <ErrorNote error={error} />}
      <label>
        New password
        <input name="new-password" type="password" autoComplete="new-password" minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} required autoFocus />
      </label>
      <label>
        Repeat the password
        <input name="repeat-password" type="password" autoComplete="new-password" minLength={8} value={again} onChange={(e) => setAgain(e.target.value)} required />
      </label>
      <button className="btn primary" type="submit" disabled={busy}>
        {busy ? 'Setting the password…' : 'Set the password and sign in'}
      </button>
      <button type="button" className="btn ghost" onClick={onUseGenerated} disabled={busy}>
        Sign in with the generated password instead
      </button>
    </Card>
  );
}
