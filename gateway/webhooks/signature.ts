/**
 * The merchant webhook signature: `Feegate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
 * t + "." + raw body)>`. A receiver recomputes v1 over the raw bytes it received, compares in
 * constant time, and refuses timestamps older than its tolerance (300 s by default) to stop replays.
 * verifySignature is what a receiver in Node would write; the README shows it.
 */
import crypto from 'node:crypto';

export const SIGNATURE_HEADER = 'feegate-signature';
export const EVENT_ID_HEADER = 'feegate-event-id';

export function signPayload(secret: string, body: string, unixSeconds: number): string {
  const v1 = crypto.createHmac('sha256', secret).update(`${unixSeconds}.${body}`, 'utf8').digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}

export function verifySignature(secret: string, body: string, header: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(',').map((kv) => kv.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signPayload(secret, body, t).split('v1=')[1]!, 'hex');
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}
