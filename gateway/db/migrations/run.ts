import type { Knex } from 'knex';

/**
 * Runs SQL statements one by one. PGlite's extended protocol takes one statement per query, and
 * knex.raw would read a `?` as a binding, so migrations are lists of statements without `?`.
 */
export async function runStatements(knex: Knex, statements: readonly string[]): Promise<void> {
  for (const sql of statements) {
    if (sql.includes('?')) throw new Error(`migration statement contains '?', which knex reads as a binding: ${sql.slice(0, 80)}`);
    await knex.raw(sql);
  }
}
