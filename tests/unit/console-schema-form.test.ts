import { Value } from '@sinclair/typebox/value';
import type { TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { SECRET_FIELDS } from '../../renderer/src/components/connectors/credential-fields';
import { FieldError, asSchema, choicesOf, hasFields, initialValues, kindOf, valuesFromObject, valuesToObject } from '../../renderer/src/components/connectors/schema-form';
import { credentialSchemas } from '../../server/connectors/types/contract';
import { catalog, driverFor } from '../../server/connectors/types';

// The console's forms are generated from the catalog's JSON Schemas as the browser receives
// them (JSON, without TypeBox's symbols); what the forms send must pass the gateway's schemas.
const wire = (s: unknown) => asSchema(JSON.parse(JSON.stringify(s)));
const http = driverFor('http')!.spec;
const request = http.operations.find((o) => o.name === 'request')!;

describe('console forms from connector schemas', () => {
  it('gives every configuration field of every type in the catalog a form field', () => {
    for (const type of catalog()) {
      const schema = wire(type.configSchema);
      expect(hasFields(schema), type.type).toBe(true);
      for (const [name, field] of Object.entries(schema.properties ?? {})) {
        expect(['string', 'number', 'integer', 'boolean', 'enum', 'object', 'json'], `${type.type}.${name}`).toContain(kindOf(field));
      }
      // A form left as it starts builds an object without throwing (defaults filled in).
      expect(() => valuesToObject(schema, initialValues(schema)), type.type).not.toThrow();
    }
  });

  it('turns the http install form into a configuration the gateway accepts, defaults included', () => {
    const schema = wire(http.configSchema);
    expect(schema.required).toEqual(['base_url']);
    const values = initialValues(schema);
    expect(values).toMatchObject({ base_url: '', api_key_header: 'X-API-Key', max_response_bytes: '1048576' });
    const config = valuesToObject(schema, { ...values, base_url: 'https://api.example.com' });
    expect(config).toEqual({ base_url: 'https://api.example.com', api_key_header: 'X-API-Key', max_response_bytes: 1048576 });
    expect(Value.Check(http.configSchema as TSchema, config)).toBe(true);
    // An empty required field is sent as it is, for the gateway to name; an empty optional one is left out.
    expect(valuesToObject(schema, { base_url: '', api_key_header: '', max_response_bytes: '' })).toEqual({ base_url: '' });
  });

  it('builds the params of http request: the method as a choice, records and the body as JSON', () => {
    const schema = wire(request.requestSchema);
    expect(kindOf(schema.properties!.method!)).toBe('enum');
    expect(choicesOf(schema.properties!.method!)).toEqual(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
    expect(kindOf(schema.properties!.query!)).toBe('json');
    expect(kindOf(schema.properties!.body!)).toBe('json');
    const params = valuesToObject(schema, { ...initialValues(schema), method: 'POST', path: '/items', query: '{"page": 2}', headers: '', body: '"plain text"' });
    expect(params).toEqual({ method: 'POST', path: '/items', query: { page: 2 }, body: 'plain text' });
    expect(Value.Check(request.requestSchema as TSchema, params)).toBe(true);
  });

  it('shows an existing configuration or params in the form and gives them back unchanged', () => {
    const config = { base_url: 'https://api.example.com/v1', api_key_header: 'X-Key', max_response_bytes: 4096 };
    const cs = wire(http.configSchema);
    expect(valuesToObject(cs, valuesFromObject(cs, config))).toEqual(config);
    const params = { method: 'PUT', path: 'a/b', query: { q: ['x', 'y'] }, headers: { 'X-Trace': '1' }, body: { nested: [1, { two: true }] } };
    const ps = wire(request.requestSchema);
    expect(valuesToObject(ps, valuesFromObject(ps, params))).toEqual(params);
  });

  it('names the field that is not a number or not JSON, before anything is sent', () => {
    const config = wire(http.configSchema);
    const bad = (run: () => unknown) => {
      try {
        run();
      } catch (e) {
        expect(e).toBeInstanceOf(FieldError);
        return e as FieldError;
      }
      throw new Error('expected a FieldError');
    };
    expect(bad(() => valuesToObject(config, { base_url: 'https://x.example', max_response_bytes: '12.5' })).path).toBe('max_response_bytes');
    const params = wire(request.requestSchema);
    const e = bad(() => valuesToObject(params, { method: 'GET', path: '/', headers: '{nope' }));
    expect(e.path).toBe('headers');
    expect(e.message).toBe('headers: not valid JSON');
  });

  it('asks for each credential kind exactly the secret fields the gateway stores', () => {
    expect(Object.keys(SECRET_FIELDS).sort()).toEqual(Object.keys(credentialSchemas).sort());
    for (const [kind, schema] of Object.entries(credentialSchemas)) {
      const fields = SECRET_FIELDS[kind as keyof typeof SECRET_FIELDS].map((f) => f.name).sort();
      expect(fields, kind).toEqual(Object.keys(wire(schema).properties ?? {}).sort());
    }
  });
});
