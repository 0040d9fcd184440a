/**
 * What an unauthenticated provider message may put into our statements. Callbacks share their
 * statements (db/batcher.ts), so a value PostgreSQL refuses would fail every callback batched with
 * it: a reference is checked against the one format we issue before any lookup, and a verified
 * message that still holds text PostgreSQL cannot store is refused before it is written.
 */

/** Our payment references, exactly as newReference() (payments/payments.ts) makes them. */
export const REFERENCE_FORMAT = /^FG[0-9A-F]{20}$/;

export function isOurReference(s: unknown): s is string {
  return typeof s === 'string' && REFERENCE_FORMAT.test(s);
}

/** NUL (refused by text and jsonb) and lone surrogates (refused by jsonb, and not text at all). */
const UNSTORABLE = /[\u0000\p{Cs}]/u;

/** Whether every string in a value (keys included) can be stored; walks without recursion. */
export function storable(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) return false;
    } else if (Array.isArray(v)) {
      stack.push(...v);
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if (UNSTORABLE.test(k)) return false;
        stack.push(x);
      }
    }
  }
  return true;
}
