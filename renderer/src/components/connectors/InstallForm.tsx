import { useState } from 'react';
import { api } from '../../api/client';
import type { Connector, ConnectorType } from '../../api/types';
import { ErrorNote, useFormSubmit } from '../common';
import { SchemaFields } from './SchemaFields';
import { FieldError, asSchema, hasFields, initialValues, valuesToObject, type FormValues } from './schema-form';

/**
 * Install an instance of one connector type: a name and the configuration its schema asks for.
 * Secrets never go here (the gateway refuses a config that looks like one): they are added as
 * credentials once the instance exists.
 */
export function InstallForm({ type, onInstalled, onCancel }: { type: ConnectorType; onInstalled(c: Connector): void; onCancel(): void }) {
  const schema = asSchema(type.config_schema);
  const fields = hasFields(schema);
  const [name, setName] = useState('');
  const [values, setValues] = useState<FormValues>(() => initialValues(schema));
  const [rawConfig, setRawConfig] = useState('{}');
  const [invalid, setInvalid] = useState<string | null>(null);
  const { error, onSubmit } = useFormSubmit(async () => {
    setInvalid(null);
    let config: Record<string, unknown>;
    try {
      config = fields ? valuesToObject(schema, values) : (JSON.parse(rawConfig || '{}') as Record<string, unknown>);
    } catch (e) {
      if (e instanceof FieldError) setInvalid(e.path);
      throw e instanceof FieldError ? e : new Error('The configuration is not valid JSON');
    }
    onInstalled(await api.post<Connector>('/v1/connectors', { type: type.type, name: name.trim(), config }));
  });
  return (
    <form className="card form" onSubmit={onSubmit} aria-label={`Install ${type.title}`}>
      <h2>Install {type.title}</h2>
      <p className="muted small">{type.description}</p>
      <label className="schema-field">
        <span>
          Name<span className="required" aria-hidden="true"> *</span>
        </span>
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} autoComplete="off" placeholder={`my ${type.type}`} />
      </label>
      {fields ? (
        <SchemaFields schema={schema} values={values} onChange={setValues} invalid={invalid} />
      ) : (
        <label className="schema-field">
          <span>Configuration (JSON)</span>
          <textarea className="mono" rows={5} value={rawConfig} onChange={(e) => setRawConfig(e.target.value)} spellCheck={false} />
        </label>
      )}
      {type.credential_types.length > 0 && (
        <p className="muted small">
          Credentials ({type.credential_types.join(', ')}) are added after installing{type.credential_required ? ' and this type needs one' : ''}; they are never part of the configuration.
        </p>
      )}
      {error && <ErrorNote error={error} />}
      <div className="row">
        <button type="submit" className="btn primary">
          Install
        </button>
        <button type="button" className="btn ghost" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
