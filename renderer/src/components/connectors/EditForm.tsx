import { useState } from 'react';
import { api, enc } from '../../api/client';
import type { Connector, ConnectorType } from '../../api/types';
import { ErrorNote, useFormSubmit } from '../common';
import { SchemaFields } from './SchemaFields';
import { FieldError, asSchema, hasFields, valuesFromObject, valuesToObject, type FormValues } from './schema-form';

/** Rename an instance or change its configuration; the gateway checks it against the type again. */
export function EditForm({ connector, type, onSaved, onCancel }: { connector: Connector; type: ConnectorType | undefined; onSaved(c: Connector): void; onCancel(): void }) {
  const schema = asSchema(type?.config_schema);
  const fields = hasFields(schema);
  const [name, setName] = useState(connector.name);
  const [values, setValues] = useState<FormValues>(() => valuesFromObject(schema, connector.config));
  const [raw, setRaw] = useState(() => JSON.stringify(connector.config, null, 2));
  const [invalid, setInvalid] = useState<string | null>(null);
  const { error, onSubmit } = useFormSubmit(async () => {
    setInvalid(null);
    let config: Record<string, unknown>;
    try {
      config = fields ? valuesToObject(schema, values) : (JSON.parse(raw) as Record<string, unknown>);
    } catch (e) {
      if (e instanceof FieldError) setInvalid(e.path);
      throw e instanceof FieldError ? e : new Error('The configuration is not valid JSON');
    }
    onSaved(await api.patch<Connector>(`/v1/connectors/${enc(connector.id)}`, { name: name.trim(), config }));
  });
  return (
    <form className="card form" onSubmit={onSubmit} aria-label="Edit connector">
      <label className="schema-field">
        <span>Name</span>
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} autoComplete="off" />
      </label>
      {fields ? (
        <SchemaFields schema={schema} values={values} onChange={setValues} invalid={invalid} />
      ) : (
        <label className="schema-field">
          <span>Configuration (JSON)</span>
          <textarea className="mono" rows={5} value={raw} onChange={(e) => setRaw(e.target.value)} spellCheck={false} />
        </label>
      )}
      {error && <ErrorNote error={error} />}
      <div className="row">
        <button type="submit" className="btn primary">
          Save
        </button>
        <button type="button" className="btn ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
