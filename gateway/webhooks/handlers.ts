/**
 * Outbox handlers for merchant webhooks:
 * - event.fanout: one delivery row per enabled endpoint that wants the event (exactly once: the
 *   rows and the completion are one transaction, under the lease);
 * - webhook.deliver: POST the signed event; 2xx ends it, 410 Gone disables the endpoint, anything
 *   else retries on a growing schedule for more than 24 hours. Every attempt is recorded, with at
 *   most RESPONSE_EXCERPT_BYTES of the answer: the attempts API shows it, and it must not become a
 *   way to read whatever a URL answers.
 * Deliveries go through deps.outbound.webhooks: the URL and every address it resolves to are checked
 * at each attempt (adapters/url-guard.ts), and nothing is ever served in-process.
 */
import { completeRow, type OutboxHandler } from '../outbox/outbox.js';
import { outboxRow } from '../outbox/outbox.js';
import { FANOUT, eventJson, type EventRow } from '../events/events.js';
import { cancelDeliveries, secretPurpose, type EndpointRow } from './endpoints.js';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signPayload } from './signature.js';

export const DELIVER = 'webhook.deliver';

/** Seconds after each failed delivery: 1 min … 24 h; ten attempts over about 51 hours. */
export const WEBHOOK_BACKOFF = [60, 300, 1800, 3600, 7200, 14400, 28800, 43200, 86400];
/** How much of an endpoint's answer is read and stored (1 KiB). */
export const RESPONSE_EXCERPT_BYTES = 1024;

/** At most `bytes` of UTF-8, cut on a character boundary, without NUL (PostgreSQL text cannot hold it). */
export function excerpt(text: string, bytes = RESPONSE_EXCERPT_BYTES): string {
  let s = Buffer.from(text.replace(/\u0000/g, '\uFFFD'), 'utf8')
    .subarray(0, bytes)
    .toString('utf8');
  while (Buffer.byteLength(s, 'utf8') > bytes) s = s.slice(0, -1);
  return s;
}

export const fanoutHandler: OutboxHandler = {
  kind: FANOUT,
  backoffSeconds: [5, 30, 60, 300, 900, 3600],
  async run(row, deps) {
    const eventId = String(row.payload.event_id);
    await deps.db.transaction(async (trx) => {
      const event = (await trx('events').where({ id: eventId }).first('id', 'tenant_id', 'type')) as Pick<EventRow, 'id' | 'tenant_id' | 'type'>;
      const endpoints = (await trx('webhook_endpoints')
        .where({ tenant_id: event.tenant_id, status: 'enabled' })
        .andWhere((q) => q.whereRaw('? = ANY(events)', [event.type]).orWhereRaw(`'*' = ANY(events)`))
        .select('id')) as { id: string }[];
      if (endpoints.length) {
        await trx('outbox')
          .insert(
            endpoints.map((e) =>
              outboxRow(deps.clock, {
                tenantId: event.tenant_id,
                kind: DELIVER,
                payload: { event_id: event.id, endpoint_id: e.id },
                dedupeKey: `deliver:${event.id}:${e.id}`,
              }),
            ),
          )
          .onConflict('dedupe_key')
          .ignore();
      }
      await completeRow(trx, deps.clock, row);
    });
    return { completed: true };
  },
  /** Many events at once: one statement queues their deliveries and completes the rows. */
  async runBatch(rows, deps) {
    const now = deps.clock.now();
    await deps.db.raw(
      `WITH r AS (SELECT unnest(?::bigint[]) AS id, unnest(?::uuid[]) AS lease),
            o AS (SELECT outbox.id, (outbox.payload->>'event_id')::uuid AS event_id FROM outbox
                    JOIN r ON r.id = outbox.id AND outbox.lease_token = r.lease WHERE outbox.status = 'pending' FOR UPDATE OF outbox),
            d AS (INSERT INTO outbox (tenant_id, kind, payload, dedupe_key, status, run_at, created_at, updated_at)
                  SELECT e.tenant_id, '${DELIVER}', jsonb_build_object('event_id', e.id, 'endpoint_id', w.id), 'deliver:' || e.id || ':' || w.id,
                         'pending', ?, ?, ?
                    FROM o JOIN events e ON e.id = o.event_id
                    JOIN webhook_endpoints w ON w.tenant_id = e.tenant_id AND w.status = 'enabled' AND (e.type = ANY(w.events) OR '*' = ANY(w.events))
                  ON CONFLICT (dedupe_key) DO NOTHING)
       UPDATE outbox SET status = 'done', done_at = ?, updated_at = ?, lease_token = NULL, locked_until = NULL FROM o WHERE outbox.id = o.id`,
      [`{${rows.map((r) => r.id).join(',')}}`, `{${rows.map((r) => r.lease_token).join(',')}}`, now, now, now, now, now],
    );
  },
};

export const deliverHandler: OutboxHandler = {
  kind: DELIVER,
  backoffSeconds: WEBHOOK_BACKOFF,
  async run(row, deps) {
    const { db, clock } = deps;
    const endpoint = (await db('webhook_endpoints')
      .where({ id: String(row.payload.endpoint_id) })
      .first()) as EndpointRow | undefined;
    if (!endpoint || endpoint.status !== 'enabled') return { cancel: `endpoint ${endpoint?.status ?? 'missing'}` };
    const event = (await db('events')
      .where({ id: String(row.payload.event_id) })
      .first()) as EventRow;
    const body = JSON.stringify(eventJson(event));
    const t = Math.floor(clock.now().getTime() / 1000);
    const secret = deps.secrets.open(endpoint.secret_enc, secretPurpose(endpoint.id));
    const started = Date.now();
    let status: number | null = null;
    let answer = '';
    let error: string | null = null;
    try {
      const res = await deps.outbound.webhooks.request({
        method: 'POST',
        url: endpoint.url,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'feegate-webhooks/1',
          [SIGNATURE_HEADER]: signPayload(secret, body, t),
          [EVENT_ID_HEADER]: event.id,
        },
        body,
        timeoutMs: deps.config.webhookTimeoutMs, // WEBHOOK_TIMEOUT_MS: then a failed attempt, retried on the schedule
        maxResponseBytes: RESPONSE_EXCERPT_BYTES,
      });
      status = res.status;
      answer = excerpt(res.body);
    } catch (err) {
      error = excerpt((err as Error).message, 500);
    }
    const latency = Date.now() - started;
    const delivered = status !== null && status >= 200 && status < 300;
    const gone = status === 410;
    const lastTry = !delivered && !gone && row.attempts > WEBHOOK_BACKOFF.length;
    const outcome = delivered ? 'delivered' : gone ? 'gone' : lastTry ? 'gave_up' : 'retry';
    await db.transaction(async (trx) => {
      await trx('webhook_attempts').insert({
        tenant_id: event.tenant_id,
        event_id: event.id,
        endpoint_id: endpoint.id,
        attempt: row.attempts,
        status_code: status,
        latency_ms: latency,
        response_excerpt: answer,
        error,
        outcome,
        created_at: clock.now(),
      });
      if (gone) {
        await trx('webhook_endpoints')
          .where({ id: endpoint.id })
          .update({ status: 'disabled', disabled_reason: 'the endpoint answered 410 Gone', updated_at: clock.now() });
        await cancelDeliveries(trx, clock, endpoint.id, 'endpoint answered 410 Gone');
      }
    });
    deps.metrics.webhookAttempts.inc({ outcome });
    if (delivered) return { done: true };
    if (gone) return { cancel: 'endpoint answered 410 Gone' };
    return { retry: error ?? `HTTP ${status}` };
  },
};

export const webhookHandlers = [fanoutHandler, deliverHandler];
