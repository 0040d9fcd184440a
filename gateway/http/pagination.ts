/**
 * Cursor pagination, newest first, stable under inserts: the cursor is the (created_at, id) of
 * the last row returned, opaque to clients (base64url JSON).
 */
import type { Knex } from 'knex';
import { FeegateError } from '../errors.js';

export interface Page<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

export function parseLimit(raw: string | undefined): number {
  return raw === undefined ? 20 : Number(raw);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** What encodeCursor writes: toISOString() of a time from 1970 to 9999 (PostgreSQL holds it as timestamptz). */
const ISO = /^(19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;

function encodeCursor(t: Date, id: string): string {
  return Buffer.from(JSON.stringify({ t: t.toISOString(), id })).toString('base64url');
}

/**
 * A cursor is only ever one we wrote: an object of exactly { t, id }, t as toISOString() gives it
 * (a real instant that round-trips), id a UUID. Anything else is refused here, before it reaches
 * the `::timestamptz` and `::uuid` casts (which would fail the statement: a 500).
 */
export function decodeCursor(cursor: string): { t: string; id: string } {
  const invalid = () => new FeegateError('FEEGATE_ERR_CURSOR_INVALID', undefined, { field: 'cursor' });
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw invalid();
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalid();
  const { t, id, ...rest } = v as Record<string, unknown>;
  if (Object.keys(rest).length || typeof t !== 'string' || typeof id !== 'string' || !UUID.test(id) || !ISO.test(t)) throw invalid();
  const time = new Date(t);
  if (Number.isNaN(time.getTime()) || time.toISOString() !== t) throw invalid(); // 2026-02-30T… or 25:00
  return { t, id };
}

/** Applies keyset pagination to a query on a table with created_at and id columns. */
export async function paginate<Row extends { created_at: Date; id: string }, Out>(
  query: Knex.QueryBuilder,
  opts: { limit?: string; cursor?: string; table: string },
  map: (row: Row) => Out,
): Promise<Page<Out>> {
  const limit = parseLimit(opts.limit);
  if (opts.cursor) {
    const c = decodeCursor(opts.cursor);
    query.whereRaw(`(${opts.table}.created_at, ${opts.table}.id) < (?::timestamptz, ?::uuid)`, [c.t, c.id]);
  }
  const rows = (await query
    .orderBy([
      { column: `${opts.table}.created_at`, order: 'desc' },
      { column: `${opts.table}.id`, order: 'desc' },
    ])
    .limit(limit + 1)) as Row[];
  const has_more = rows.length > limit;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    object: 'list',
    data: page.map(map),
    has_more,
    next_cursor: has_more && last ? encodeCursor(new Date(last.created_at), last.id) : null,
  };
}
