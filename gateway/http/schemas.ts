/**
 * Shared TypeBox schemas: error body, list envelope, pagination, and the safe strings every route
 * uses. A string that reaches the database or a provider must be text PostgreSQL and a signed
 * string can hold: no NUL (PostgreSQL refuses it in text and jsonb), no unpaired surrogate (jsonb
 * refuses it, UTF-8 cannot encode it), no control character (it breaks logs, CSV and the raw joins
 * providers sign). The rules are ajv formats, checked with the rest of the schema, before any handler.
 */
import { Type, type TSchema, type TUnsafe } from 'typebox';
import type { FastifyInstance, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { MAX_AMOUNT } from '../money.js';

/** C0 controls but TAB, LF and CR; DEL; C1 controls; the noncharacters U+FFFE and U+FFFF. */
const CONTROL_IN_TEXT = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\uFFFE\uFFFF]/;
/** The same and TAB, LF, CR: a one-line value (a name, a code, a reference, a label). */
const CONTROL_IN_LINE = /[\u0000-\u001F\u007F-\u009F\uFFFE\uFFFF]/;
/** A character a person can see: not white space, not a format character (zero-width, bidi, BOM). */
const VISIBLE = /[^\p{White_Space}\p{Cf}]/u;
/** In a /u regex a well-paired surrogate is one code point: \p{Cs} matches only a lone half. */
const LONE_SURROGATE = /\p{Cs}/u;

export const isSafeText = (s: string): boolean => !LONE_SURROGATE.test(s) && !CONTROL_IN_TEXT.test(s);
export const isSafeLine = (s: string): boolean => !LONE_SURROGATE.test(s) && !CONTROL_IN_LINE.test(s);
export const isSafeName = (s: string): boolean => isSafeLine(s) && VISIBLE.test(s);

/** Calendar dates we hold: PostgreSQL can store far more, but year 0000 it cannot, and no fee is due in 3000. */
export const DATE_MIN = '2000-01-01';
export const DATE_MAX = '2999-12-31';
function isBoundedDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m || s < DATE_MIN || s > DATE_MAX) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s; // refuses 2026-02-30
}

/** The formats, registered on fastify's ajv (app.ts: ajv.customOptions.formats). */
export const SAFE_FORMATS = {
  'feegate-text': { type: 'string', validate: isSafeText },
  'feegate-line': { type: 'string', validate: isSafeLine },
  'feegate-name': { type: 'string', validate: isSafeName },
  'feegate-date': { type: 'string', validate: isBoundedDate },
} as const;
export const SAFE_FORMAT_NAMES = new Set(Object.keys(SAFE_FORMATS));

type Len = { minLength?: number; maxLength: number; description?: string };
/** Free text, possibly several lines (descriptions, legal bases, reasons). */
export const SafeText = (o: Len) => Type.String({ format: 'feegate-text', ...o });
/** One line of text (labels, codes, references, query filters). */
export const SafeLine = (o: Len) => Type.String({ format: 'feegate-line', ...o });
/** A name: one line with at least one visible character (not only spaces or zero-width characters). */
export const SafeName = (o: Len) => Type.String({ format: 'feegate-name', minLength: 1, ...o });
/** YYYY-MM-DD, a real calendar day from 2000 to 2999. */
export const SafeDate = (description?: string) => Type.String({ format: 'feegate-date', description: description ?? `YYYY-MM-DD, ${DATE_MIN} to ${DATE_MAX}` });

/** A string-to-string map with bounded, non-empty one-line keys and one-line values. */
export function SafeMap(o: { maxKey: number; maxValue: number; maxProperties: number; description?: string }): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({
    type: 'object',
    propertyNames: { type: 'string', format: 'feegate-name', minLength: 1, maxLength: o.maxKey },
    additionalProperties: { type: 'string', format: 'feegate-line', maxLength: o.maxValue },
    maxProperties: o.maxProperties,
    ...(o.description ? { description: o.description } : {}),
  });
}

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable error code (FEEGATE_ERR_...)' }),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorBody', description: 'Every error has this shape' },
);

export const Amount = Type.Integer({ minimum: 1, maximum: MAX_AMOUNT, description: 'Integer VND, 1 to 10^15' });
export const Uuid = Type.String({ format: 'uuid' });

const listParams = {
  limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$', description: '1 to 100, default 20' })),
  cursor: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,200}$', description: 'next_cursor of the previous page' })),
};

/** Query string of a list route: limit, cursor and the route's own filters; nothing else. */
export function listQuery<P extends Record<string, TSchema>>(filters: P = {} as P) {
  return Type.Object({ ...listParams, ...filters }, { additionalProperties: false });
}

export const ListQuery = listQuery();

export function ListOf<T extends TSchema>(item: T) {
  return Type.Object({
    object: Type.Literal('list'),
    data: Type.Array(item),
    has_more: Type.Boolean(),
    next_cursor: Type.Union([Type.String(), Type.Null()]),
  });
}

export const errorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
};

type Json = Record<string, unknown>;

/**
 * A copy of a request schema where every string that says nothing of its content (no format,
 * pattern, enum or const) is at least `feegate-text`, and every object key at least `feegate-line`:
 * a route written tomorrow with a bare Type.String() still refuses NUL and lone surrogates.
 */
export function withSafeStrings(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withSafeStrings);
  if (!schema || typeof schema !== 'object') return schema;
  const s = schema as Json;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    // Keywords whose values are maps of subschemas, lists of subschemas, or a subschema.
    if ((k === 'properties' || k === 'patternProperties' || k === '$defs' || k === 'definitions') && v && typeof v === 'object') {
      out[k] = Object.fromEntries(Object.entries(v as Json).map(([name, sub]) => [name, withSafeStrings(sub)]));
    } else if (
      ['items', 'additionalProperties', 'propertyNames', 'not', 'if', 'then', 'else', 'contains', 'anyOf', 'allOf', 'oneOf', 'prefixItems'].includes(k)
    ) {
      out[k] = withSafeStrings(v);
    } else {
      out[k] = v;
    }
  }
  const constrained = 'format' in s || 'pattern' in s || 'enum' in s || 'const' in s;
  if (s.type === 'string' && !constrained) out.format = 'feegate-text';
  if (s.type === 'object' && !('propertyNames' in s)) out.propertyNames = { type: 'string', format: 'feegate-line' };
  return out;
}

/** Applies withSafeStrings to the body, query string, params and headers of every route registered after it. */
export const safeStringsPlugin = fp(async (app: FastifyInstance) => {
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as Record<string, unknown> | undefined;
    if (!schema) return;
    for (const part of ['body', 'querystring', 'params', 'headers'] as const) {
      if (schema[part]) schema[part] = withSafeStrings(schema[part]);
    }
  });
});
