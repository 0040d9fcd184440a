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

function decodeCursor(cursor: string): { t: string; id: string } {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { t?: unknown; id?: unknown };
    if (typeof v.t === 'string' && typeof v.id === 'string' && !Number.isNaN(Date.parse(v.t))) return { t: v.t, id: v.id };
  } catch {
    /* fall through */
  }
  throw new FeegateError('FEEGATE_ERR_VALIDATION', 'cursor is not valid', { field: 'cursor' });
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
  const rows = (await query.orderBy([{ column: `${opts.table}.created_at`, order: 'desc' }, { column: `${opts.table}.id`, order: 'desc' }]).limit(limit + 1)) as Row[];
  const has_more = rows.length > limit;
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    object: 'list',
    data: page.map(map),
    has_more,
    next_cursor: has_more && last ? Buffer.from(JSON.stringify({ t: new Date(last.created_at).toISOString(), id: last.id })).toString('base64url') : null,
  };
}
