import { Type, type TSchema } from '@sinclair/typebox';
import { badRequest } from './problem';

/** Native endpoints reject fields they do not know. */
export const Strict = <T extends Record<string, TSchema>>(props: T, opts: { description?: string } = {}) =>
  Type.Object(props, { additionalProperties: false, ...opts });

export const Uuid = Type.String({ format: 'uuid' });
export const IdParams = Strict({ id: Uuid });
export const Timestamp = Type.String({ format: 'date-time' });
export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const Handle = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{1,62}$', description: 'lowercase letters, digits, dot, dash, underscore; 2-63 characters' });
export const Slug = Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', description: 'lowercase letters, digits and dashes; up to 63 characters' });
export const Password = Type.String({ minLength: 8, maxLength: 1024 });

export const PageQuery = {
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
  cursor: Type.Optional(Type.String({ maxLength: 512 })),
};

export const Problem = Type.Object(
  { type: Type.String(), title: Type.String(), status: Type.Integer(), detail: Type.String(), instance: Type.String() },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

/** Standard error answers, documented once for every route. */
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Problem]));

/** Cursors are opaque to clients: base64url JSON of where the next page starts. */
export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string | undefined, check: (v: unknown) => v is T): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (check(value)) return value;
  } catch {
    // fall through
  }
  throw badRequest('cursor is not valid; use the next_cursor of a previous page');
}

export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
