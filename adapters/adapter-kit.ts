/** Small pieces every adapter needs: reading credentials and query values, calling a JSON API. */
import { parse as parseCsv } from 'csv-parse/sync';
import type { AdapterContext, SettlementLine } from './contract.js';
import { HttpNetworkError, HttpTimeoutError } from './http-client.js';

/** The first value of a query parameter. */
export const firstValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** A credential the adapter cannot work without. */
export function credential(ctx: AdapterContext, provider: string, name: string): string {
  const v = ctx.credentials[name];
  if (!v) throw new Error(`${provider} credentials have no ${name}`);
  return v;
}

/**
 * POSTs JSON and parses the JSON answer. Anything that leaves us not knowing what the provider did
 * (timeout, broken connection, 5xx, an answer that is not JSON) is `{ unknown }`, never a failure.
 */
export async function postJson(
  ctx: AdapterContext, provider: string, url: string, body: unknown, timeoutMs: number,
): Promise<Record<string, unknown> | { unknown: string }> {
  try {
    const res = await ctx.http.request({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), timeoutMs });
    if (res.status >= 500) return { unknown: `${provider} answered HTTP ${res.status}` };
    const parsed = JSON.parse(res.body) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { unknown: `${provider} answered something that is not an object` };
    return parsed as Record<string, unknown>;
  } catch (err) {
    if (err instanceof HttpTimeoutError || err instanceof HttpNetworkError || err instanceof SyntaxError) return { unknown: (err as Error).message };
    throw err;
  }
}

/** A JSON object from a raw body, or null. */
export function jsonObject(raw: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(raw) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** One row of a provider's report, as the adapter reads its columns. */
export interface SettlementFields {
  providerRef: string | undefined;
  ourRef: string | null | undefined;
  amount: string | undefined;
  fee: string | undefined;
  occurredAt: Date | undefined;
  status: SettlementLine['status'] | undefined;
}

/**
 * Parses a CSV settlement report (header row; the adapter maps the columns) into settlement lines,
 * refusing the whole file at the first malformed line, which it names.
 */
export function parseSettlementCsv(content: string, columns: (row: Record<string, string>) => SettlementFields): SettlementLine[] {
  const rows = parseCsv(content, { columns: true, skip_empty_lines: true, trim: true }) as Record<string, string>[];
  const whole = (s: string | undefined) => (s !== undefined && /^[0-9]{1,16}$/.test(s) ? Number(s) : undefined);
  return rows.map((row, i) => {
    const f = columns(row);
    const amount = whole(f.amount);
    const fee = whole(f.fee ?? '0');
    if (!f.providerRef || !f.ourRef || amount === undefined || fee === undefined || !f.occurredAt || Number.isNaN(f.occurredAt.getTime()) || !f.status) {
      throw new Error(`settlement line ${i + 2} is malformed`);
    }
    return { providerRef: f.providerRef, ourRef: f.ourRef, amount, fee, occurredAt: f.occurredAt, status: f.status };
  });
}
