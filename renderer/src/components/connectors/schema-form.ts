// The catalog describes every configuration and every operation's params as JSON Schema (the
// gateway's TypeBox schemas, GET /v1/connectors/catalog). The console builds its forms from
// them instead of knowing each connector type: strings, numbers, booleans, enums (TypeBox
// unions of literals) and nested objects get fields; anything else (records, arrays, unknown)
// gets a JSON text field. The gateway validates again; its problem is what the user sees.

/** The parts of a JSON Schema the forms read. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
}

export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'object' | 'json';

export function asSchema(s: unknown): JsonSchema {
  return typeof s === 'object' && s !== null ? (s as JsonSchema) : {};
}

/** The literal choices of an enum or of a union of constants, or null. */
export function choicesOf(s: JsonSchema): string[] | null {
  if (Array.isArray(s.enum) && s.enum.every((v) => typeof v === 'string')) return s.enum as string[];
  if (Array.isArray(s.anyOf) && s.anyOf.length > 0 && s.anyOf.every((a) => typeof a.const === 'string')) return s.anyOf.map((a) => a.const as string);
  return null;
}

export function kindOf(s: JsonSchema): FieldKind {
  if (choicesOf(s)) return 'enum';
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (t === 'string' || t === 'number' || t === 'integer' || t === 'boolean') return t;
  if (t === 'object' && s.properties && Object.keys(s.properties).length > 0) return 'object';
  return 'json';
}

/** Form state: one entry per leaf field, keyed by its dotted path. */
export type FormValues = Record<string, string | boolean>;

/** Starting values: the schema's defaults, JSON fields empty. */
export function initialValues(schema: JsonSchema, prefix = ''): FormValues {
  const out: FormValues = {};
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const path = prefix + name;
    const kind = kindOf(field);
    if (kind === 'object') Object.assign(out, initialValues(field, `${path}.`));
    else if (kind === 'boolean') out[path] = field.default === true;
    else if (kind === 'json') out[path] = field.default === undefined ? '' : JSON.stringify(field.default, null, 2);
    else out[path] = field.default === undefined ? '' : String(field.default);
  }
  return out;
}

/** A field the user filled in wrongly before anything was sent (a number that is not one, bad JSON). */
export class FieldError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The object the form stands for. Empty optional fields are left out; an empty required one is
 * sent as it is, so the gateway names it in its problem.
 */
export function valuesToObject(schema: JsonSchema, values: FormValues, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const required = new Set(schema.required ?? []);
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const path = prefix + name;
    const kind = kindOf(field);
    if (kind === 'object') {
      const inner = valuesToObject(field, values, `${path}.`);
      if (required.has(name) || Object.keys(inner).length > 0) out[name] = inner;
      continue;
    }
    const raw = values[path];
    if (kind === 'boolean') {
      out[name] = raw === true;
      continue;
    }
    const text = typeof raw === 'string' ? raw : '';
    if (text.trim() === '') {
      if (required.has(name) && kind !== 'json') out[name] = kind === 'string' || kind === 'enum' ? text : null;
      continue;
    }
    if (kind === 'number' || kind === 'integer') {
      const n = Number(text);
      if (!Number.isFinite(n) || (kind === 'integer' && !Number.isInteger(n))) throw new FieldError(path, `${path}: ${kind === 'integer' ? 'a whole number' : 'a number'} is expected`);
      out[name] = n;
    } else if (kind === 'json') {
      try {
        out[name] = JSON.parse(text) as unknown;
      } catch {
        throw new FieldError(path, `${path}: not valid JSON`);
      }
    } else {
      out[name] = text;
    }
  }
  return out;
}

/** True when the schema has fields a form can show; otherwise the whole value is one JSON text. */
export function hasFields(schema: JsonSchema): boolean {
  return kindOf(schema) === 'object';
}

/** Form values showing an existing object (an instance's configuration, to change it). */
export function valuesFromObject(schema: JsonSchema, obj: Record<string, unknown>, prefix = ''): FormValues {
  const out: FormValues = {};
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const path = prefix + name;
    const kind = kindOf(field);
    const v = obj[name];
    if (kind === 'object') Object.assign(out, valuesFromObject(field, typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {}, `${path}.`));
    else if (kind === 'boolean') out[path] = v === true;
    else if (kind === 'json') out[path] = v === undefined ? '' : JSON.stringify(v, null, 2);
    else out[path] = v === undefined || v === null ? '' : String(v);
  }
  return out;
}
