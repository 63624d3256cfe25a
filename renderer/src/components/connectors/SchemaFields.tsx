import { choicesOf, kindOf, type FormValues, type JsonSchema } from './schema-form';

interface Props {
  schema: JsonSchema;
  values: FormValues;
  onChange(values: FormValues): void;
  /** The field the last local check refused (its path). */
  invalid?: string | null;
  prefix?: string;
}

function label(name: string, field: JsonSchema): string {
  return field.title ?? name.replace(/_/g, ' ');
}

/** The inputs of an object schema, one per property, nested objects as fieldsets. */
export function SchemaFields({ schema, values, onChange, invalid, prefix = '' }: Props) {
  const required = new Set(schema.required ?? []);
  const set = (path: string, v: string | boolean) => onChange({ ...values, [path]: v });
  return (
    <>
      {Object.entries(schema.properties ?? {}).map(([name, field]) => {
        const path = prefix + name;
        const kind = kindOf(field);
        const mark = required.has(name) ? (
          <span className="required" aria-hidden="true">
            {' '}
            *
          </span>
        ) : null;
        const hint = field.description ? <span className="hint">{field.description}</span> : null;
        const bad = invalid === path;
        if (kind === 'object') {
          return (
            <fieldset key={path} className="schema-object">
              <legend>
                {label(name, field)}
                {mark}
              </legend>
              {hint}
              <SchemaFields schema={field} values={values} onChange={onChange} invalid={invalid} prefix={`${path}.`} />
            </fieldset>
          );
        }
        if (kind === 'boolean') {
          return (
            <label key={path} className="check">
              <input type="checkbox" checked={values[path] === true} onChange={(e) => set(path, e.target.checked)} />
              {label(name, field)}
              {hint}
            </label>
          );
        }
        const value = typeof values[path] === 'string' ? (values[path] as string) : '';
        let input;
        if (kind === 'enum') {
          input = (
            <select value={value} onChange={(e) => set(path, e.target.value)} required={required.has(name)} aria-invalid={bad || undefined}>
              {!required.has(name) || value === '' ? <option value="">—</option> : null}
              {choicesOf(field)!.map((c) => (
                <option key={c} value={c}>
                  {c}
                </option>
              ))}
            </select>
          );
        } else if (kind === 'json') {
          input = <textarea className="mono" rows={3} value={value} onChange={(e) => set(path, e.target.value)} placeholder="JSON" spellCheck={false} aria-invalid={bad || undefined} />;
        } else {
          const numeric = kind === 'number' || kind === 'integer';
          input = (
            <input
              type={numeric ? 'number' : 'text'}
              step={kind === 'integer' ? 1 : 'any'}
              min={field.minimum}
              max={field.maximum}
              value={value}
              onChange={(e) => set(path, e.target.value)}
              required={required.has(name)}
              autoComplete="off"
              spellCheck={false}
              aria-invalid={bad || undefined}
            />
          );
        }
        return (
          <label key={path} className="schema-field">
            <span>
              {label(name, field)}
              {mark}
            </span>
            {input}
            {hint}
          </label>
        );
      })}
    </>
  );
}
