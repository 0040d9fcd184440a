/** Small pieces every adapter needs: reading credentials and query values, calling a JSON API. */
import type { AdapterContext } from './contract.js';
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
