/** Small pieces every adapter needs: reading credentials and query values, calling a JSON API. */
import { parse as parseCsv } from 'csv-parse/sync';
import type { AdapterContext, SettlementLine, VerifyResult } from './contract.js';
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
  ctx: AdapterContext,
  provider: string,
  url: string,
  body: unknown,
  timeoutMs: number,
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

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** The raw joins' separators, control and format characters (zero-width ones included), line separators. */
const FRAMING = /[&=|\p{Cc}\p{Cf}\u2028\u2029]/u;

/**
 * A value we are about to put into a string a provider signs, made unable to move that string's
 * field boundaries: the separators of the raw joins our providers sign (`&` and `=` of MoMo's and
 * PayGov's `k=v&k=v`, `|` of ZaloPay's and VNPay's pipe joins) and control characters become a
 * space, lone surrogates are repaired, runs of spaces collapse. Every free-text field we send
 * (descriptions, reasons, names) goes through this, in every adapter: a bill description such as
 * `Z&resultCode=0&transId=q` once let a payer turn MoMo's signed cancel into a signed success.
 */
export function signableText(value: string, maxLength: number): string {
  const clean = value.replace(new RegExp(LONE_SURROGATE.source, 'g'), ' ').replace(new RegExp(FRAMING.source, 'gu'), ' ').replace(/\s+/g, ' ').trim();
  // Cut by code points, so the cut never leaves half a surrogate pair.
  return Array.from(clean).slice(0, maxLength).join('').trimEnd();
}

/**
 * One of our own URLs (return, notify) about to go into a signed string: the characters that
 * could frame a field are percent-encoded, which leaves a URL without them unchanged.
 */
export function signableUrl(url: string): string {
  return url.replace(new RegExp(`${LONE_SURROGATE.source}|${FRAMING.source}`, 'gu'), (c) =>
    c.length === 1 && c.charCodeAt(0) < 0xd800 ? encodeURIComponent(c) : '',
  );
}

/** The largest amount (VND) feegate itself takes (FEEGATE_ERR_AMOUNT_INVALID): a provider that documents no lower limit declares this one. */
export const FEEGATE_MAX_AMOUNT = 10 ** 15;

/** True when a value the provider sent could not move a raw join's field boundaries (see signableText). */
export function framingSafe(value: string): boolean {
  return !FRAMING.test(value) && !LONE_SURROGATE.test(value);
}

/**
 * A whole VND amount from a provider message: a JSON integer or a string of digits (no sign, no
 * exponent, no fraction), at most `max`. Parsed as a bigint, so a huge value is refused rather than
 * rounded by Number.
 */
export function providerAmount(v: unknown, max: number): number | undefined {
  let s: string;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) return undefined;
    s = String(v);
  } else if (typeof v === 'string') s = v;
  else return undefined;
  if (!/^(0|[1-9][0-9]{0,17})$/.test(s)) return undefined;
  const n = BigInt(s);
  return n <= BigInt(max) ? Number(n) : undefined;
}

/** A string of ASCII digits (a provider's id, code or timestamp), or undefined. JSON integers are accepted as their digits. */
export function digits(v: unknown, maxLength = 20): string | undefined {
  const s = typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : v;
  return typeof s === 'string' && s.length >= 1 && s.length <= maxLength && /^[0-9]+$/.test(s) ? s : undefined;
}

/** How far ahead of our clock a provider's message may be dated (their clock and ours differ a little). */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;

export type Refusal = Extract<VerifyResult, { ok: false }>;

/** A refusal for a message dated beyond the clock-skew window (by its own date field), or null when its date is acceptable. */
export function futureDated(ctx: AdapterContext, at: Date | undefined, field: string): Refusal | null {
  if (!at || Number.isNaN(at.getTime())) return { ok: false, reason: 'malformed', message: `${field} is not a date` };
  if (at.getTime() > ctx.clock.now().getTime() + CLOCK_SKEW_MS) return { ok: false, reason: 'stale', message: `${field} is in the future` };
  return null;
}

/** A refusal of a message for its shape: what the adapter answers as the provider's "malformed". */
export const malformed = (message: string): Refusal => ({ ok: false, reason: 'malformed', message });

/** A provider's free-text value (a message, an echoed description) that is a string, framing-safe and not too long. */
export function safeText(v: unknown, maxLength: number): string | undefined {
  return typeof v === 'string' && Array.from(v).length <= maxLength && framingSafe(v) ? v : undefined;
}

/** An identifier: ASCII letters, digits and `-_.`, 1 to maxLength long (our references, providers' ids and codes). */
export function token(v: unknown, maxLength = 64): string | undefined {
  return typeof v === 'string' && v.length <= maxLength && /^[0-9A-Za-z_.-]+$/.test(v) ? v : undefined;
}
