import { useEffect, useState } from 'react';
import { ApiError, api, enc, errorText } from '../../api/client';
import type { Connector, ConnectorOperation, OperationOutcome } from '../../api/types';
import { SchemaFields } from './SchemaFields';
import { FieldError, asSchema, hasFields, initialValues, valuesToObject, type FormValues } from './schema-form';

type Shown = { ok: true; outcome: OperationOutcome } | { ok: false; status?: number; title?: string; text: string };

/** One operation by hand: params from its schema (or JSON), then its result or its problem. */
function OperationForm({ connector, op, onRan }: { connector: Connector; op: ConnectorOperation; onRan(): void }) {
  const schema = asSchema(op.request_schema);
  const fields = hasFields(schema);
  const [values, setValues] = useState<FormValues>(() => initialValues(schema));
  const [raw, setRaw] = useState('{}');
  const [invalid, setInvalid] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [shown, setShown] = useState<Shown | null>(null);
  const run = async () => {
    setInvalid(null);
    let params: Record<string, unknown>;
    try {
      params = fields ? valuesToObject(schema, values) : (JSON.parse(raw || '{}') as Record<string, unknown>);
    } catch (e) {
      if (e instanceof FieldError) setInvalid(e.path);
      setShown({ ok: false, text: e instanceof FieldError ? e.message : 'The params are not valid JSON' });
      return;
    }
    setBusy(true);
    try {
      const outcome = await api.post<OperationOutcome>(`/v1/connectors/${enc(connector.id)}/operations/${enc(op.name)}`, { params });
      setShown({ ok: true, outcome });
    } catch (err) {
      setShown(err instanceof ApiError ? { ok: false, status: err.status, title: err.problem?.title, text: err.message } : { ok: false, text: errorText(err) });
    } finally {
      setBusy(false);
      onRan();
    }
  };
  return (
    <form
      className="form"
      aria-label={`Run ${op.name}`}
      onSubmit={(e) => {
        e.preventDefault();
        void run();
      }}
    >
      {op.description && (
        <p className="muted small">
          {op.description} ({op.execution}, up to {Math.round(op.timeout_ms / 1000)} s{op.idempotent ? ', safe to repeat' : ''})
        </p>
      )}
      {fields ? (
        <SchemaFields schema={schema} values={values} onChange={setValues} invalid={invalid} />
      ) : (
        <label className="schema-field">
          <span>Params (JSON)</span>
          <textarea className="mono" rows={5} value={raw} onChange={(e) => setRaw(e.target.value)} spellCheck={false} />
        </label>
      )}
      <div className="row">
        <button type="submit" className="btn primary" disabled={busy}>
          {busy ? 'Running…' : 'Run'}
        </button>
      </div>
      {shown?.ok === true && (
        <div className="card notice ok" role="status" aria-label="Result">
          <div className="small">
            Done in {shown.outcome.duration_ms} ms{shown.outcome.provider_status !== null ? `, provider status ${shown.outcome.provider_status}` : ''}
            {shown.outcome.attempts > 1 ? `, ${shown.outcome.attempts} attempts` : ''}
            {shown.outcome.replayed ? ' (replayed)' : ''}
          </div>
          <pre className="result">{JSON.stringify(shown.outcome.result, null, 2)}</pre>
        </div>
      )}
      {shown?.ok === false && (
        <div className="error-note" role="alert" aria-label="Problem">
          <span>
            {shown.status ? <strong>{shown.title ?? shown.status}: </strong> : null}
            {shown.text}
          </span>
        </div>
      )}
    </form>
  );
}

function freeOperation(name: string): ConnectorOperation {
  return { name, title: name, description: '', request_schema: {}, result_schema: {}, execution: 'sync', timeout_ms: 0, idempotent: false, retry: { attempts: 1, backoff_ms: 0 } };
}

type Discovery = { state: 'loading' } | { state: 'loaded'; operations: ConnectorOperation[] } | { state: 'failed'; text: string };

/**
 * The tools an instance's server lists now (`GET /v1/connectors/{id}/operations/catalog`), for
 * types whose operations are discovered. Asking starts the server with the instance's credential,
 * so it is asked once per visit, and a failure leaves a typed name as the way on.
 */
function useDiscovered(connector: Connector, discovered: boolean): Discovery | null {
  const [found, setFound] = useState<Discovery | null>(null);
  useEffect(() => {
    if (!discovered || connector.status === 'disabled') return;
    const controller = new AbortController();
    setFound({ state: 'loading' });
    api
      .get<{ discovered: boolean; operations: ConnectorOperation[] }>(`/v1/connectors/${enc(connector.id)}/operations/catalog`, controller.signal)
      .then((r) => setFound({ state: 'loaded', operations: r.operations }))
      .catch((err: unknown) => {
        if (!controller.signal.aborted) setFound({ state: 'failed', text: errorText(err) });
      });
    return () => controller.abort();
  }, [connector.id, connector.status, discovered]);
  return found;
}

/** Pick one of the instance's operations and run it. */
export function RunOperation({ connector, operations, discovered = false, onRan }: { connector: Connector; operations: ConnectorOperation[]; discovered?: boolean; onRan(): void }) {
  const found = useDiscovered(connector, discovered);
  if (found?.state === 'loaded' && found.operations.length > 0) return <OperationPicker connector={connector} operations={found.operations} onRan={onRan} />;
  if (operations.length > 0) return <OperationPicker connector={connector} operations={operations} onRan={onRan} />;
  return (
    <>
      {found?.state === 'loading' && <p className="muted small">Asking the server for its tools…</p>}
      {found?.state === 'failed' && <p className="muted small">The server's tools could not be listed ({found.text}); type a tool's name.</p>}
      <TypedOperation connector={connector} onRan={onRan} />
    </>
  );
}

/** A typed operation name with JSON params, which the gateway checks: when no list is known. */
function TypedOperation({ connector, onRan }: { connector: Connector; onRan(): void }) {
  const [name, setName] = useState('');
  return (
    <>
      <label>
        Operation name
        <input value={name} onChange={(e) => setName(e.target.value.trim())} autoComplete="off" spellCheck={false} />
      </label>
      {name && <OperationForm key={name} connector={connector} op={freeOperation(name)} onRan={onRan} />}
    </>
  );
}

function OperationPicker({ connector, operations, onRan }: { connector: Connector; operations: ConnectorOperation[]; onRan(): void }) {
  const [name, setName] = useState(operations[0]?.name ?? '');
  const op = operations.find((o) => o.name === name);
  return (
    <>
      <label>
        Operation
        <select value={name} onChange={(e) => setName(e.target.value)}>
          {operations.map((o) => (
            <option key={o.name} value={o.name}>
              {o.title} ({o.name})
            </option>
          ))}
        </select>
      </label>
      {op && <OperationForm key={op.name} connector={connector} op={op} onRan={onRan} />}
    </>
  );
}
