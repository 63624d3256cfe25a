import { useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { errorText } from '../api/client';
import { useUi } from '../store/ui';

export interface Loaded<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload(): void;
  setData(d: T): void;
}

/**
 * Loads once per `deps` change (aborting the previous load), and again on `reload()`. With
 * `pollMs`, refreshes quietly in the background while the page is visible.
 */
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[], pollMs?: number): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;

  useEffect(() => {
    const ctl = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async (quiet: boolean) => {
      if (!quiet) setLoading(true);
      try {
        const d = await fnRef.current(ctl.signal);
        if (ctl.signal.aborted) return;
        setData(d);
        setError(null);
      } catch (err) {
        if (ctl.signal.aborted) return;
        setError(errorText(err));
      } finally {
        if (!ctl.signal.aborted) {
          setLoading(false);
          if (pollMs) timer = setTimeout(() => void run(true), document.hidden ? pollMs * 4 : pollMs);
        }
      }
    };
    void run(false);
    return () => {
      ctl.abort();
      clearTimeout(timer);
    };
  }, [...deps, tick, pollMs]);

  return { data, error, loading, reload: useCallback(() => setTick((t) => t + 1), []), setData };
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      {label}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children && <div className="empty-body">{children}</div>}
    </div>
  );
}

export function ErrorNote({ error, onRetry }: { error: string; onRetry?: () => void }) {
  return (
    <div className="error-note" role="alert">
      <span>{error}</span>
      {onRetry && (
        <button type="button" className="btn small" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

/** Loading, error or the content: every list and detail goes through this. */
export function Loadable<T>({ state, children, label }: { state: Loaded<T>; children: (data: T) => ReactNode; label?: string }) {
  if (state.data === undefined) {
    if (state.error) return <ErrorNote error={state.error} onRetry={state.reload} />;
    return <Spinner label={label} />;
  }
  return (
    <>
      {state.error && <ErrorNote error={state.error} onRetry={state.reload} />}
      {children(state.data)}
    </>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge status-${status}`}>{status}</span>;
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  const toast = useUi((s) => s.toast);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Plain HTTP on the LAN has no async clipboard: fall back to a selection copy.
      const area = document.createElement('textarea');
      area.value = text;
      document.body.appendChild(area);
      area.select();
      const ok = document.execCommand('copy');
      area.remove();
      if (!ok) {
        toast('Copy failed: select the text and copy it by hand', 'error');
        return;
      }
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <button type="button" className="btn small" onClick={() => void copy()} aria-label={label}>
      {copied ? 'Copied' : label}
    </button>
  );
}

const rtf = typeof Intl !== 'undefined' && 'RelativeTimeFormat' in Intl ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null;

export function relTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((t - Date.now()) / 1000);
  const a = Math.abs(s);
  if (!rtf) return new Date(t).toLocaleString();
  if (a < 45) return rtf.format(s, 'second');
  if (a < 2700) return rtf.format(Math.round(s / 60), 'minute');
  if (a < 64800) return rtf.format(Math.round(s / 3600), 'hour');
  if (a < 30 * 86400) return rtf.format(Math.round(s / 86400), 'day');
  return new Date(t).toLocaleDateString();
}

export function Time({ iso }: { iso: string | null | undefined }) {
  const [, force] = useState(0);
  useEffect(() => {
    const t = setInterval(() => force((n) => n + 1), 30_000);
    return () => clearInterval(t);
  }, []);
  return <time dateTime={iso ?? undefined} title={iso ? new Date(iso).toLocaleString() : undefined}>{relTime(iso)}</time>;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

export function PageHeader({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <header className="page-header">
      <h1>{title}</h1>
      <div className="page-actions">{children}</div>
    </header>
  );
}

/** A button that runs an async action, shows it is busy, and reports failures as a toast. */
export function ActionButton({ onAction, children, className = 'btn', confirm, disabled, title }: { onAction: () => Promise<unknown>; children: ReactNode; className?: string; confirm?: string; disabled?: boolean; title?: string }) {
  const [busy, setBusy] = useState(false);
  const toast = useUi((s) => s.toast);
  return (
    <button
      type="button"
      className={className}
      disabled={busy || disabled}
      title={title}
      onClick={async () => {
        if (confirm && !window.confirm(confirm)) return;
        setBusy(true);
        try {
          await onAction();
        } catch (err) {
          toast(errorText(err), 'error');
        } finally {
          setBusy(false);
        }
      }}
    >
      {children}
    </button>
  );
}

/**
 * A form's submit handler: no page reload, the error of the last attempt (cleared when it is
 * retried) for an <ErrorNote>, and whatever `action` throws turned into that error.
 */
export function useFormSubmit(action: () => Promise<void>): { error: string | null; onSubmit: (e: FormEvent) => Promise<void> } {
  const [error, setError] = useState<string | null>(null);
  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return { error, onSubmit };
}
