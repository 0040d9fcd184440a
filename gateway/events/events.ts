/**
 * Events: what happened to a tenant's objects (payment.succeeded, bill.paid, refund.succeeded, …),
 * stored, listed by the API, and fanned out to the tenant's webhook endpoints through the outbox.
 * An event and its outbox row are written in the transaction of the change they describe.
 */
import crypto from 'node:crypto';
import type { Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import { outboxRow } from '../outbox/outbox.js';

export const EVENT_TYPES = [
  'payment.succeeded',
  'payment.failed',
  'payment.cancelled',
  'payment.expired',
  'payment.refunded',
  'payment.partially_refunded',
  'bill.paid',
  'bill.expired',
  'bill.cancelled',
  'refund.succeeded',
  'refund.failed',
  'receipt.issued',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const FANOUT = 'event.fanout';

export interface NewEvent {
  tenantId: string;
  type: EventType;
  objectId: string;
  data: Record<string, unknown>;
}

/** The event row and its fan-out outbox row, for a statement that inserts them itself. */
export function eventRows(clock: Clock, e: NewEvent) {
  const id = crypto.randomUUID();
  return {
    event: { id, tenant_id: e.tenantId, type: e.type, object_id: e.objectId, data: JSON.stringify(e.data), created_at: clock.now() },
    outbox: outboxRow(clock, { tenantId: e.tenantId, kind: FANOUT, payload: { event_id: id } }),
  };
}

/** Stores events and queues their fan-out, in the caller's transaction (two statements for any number). */
export async function emitEvents(trx: Trx, clock: Clock, list: readonly NewEvent[]): Promise<string[]> {
  if (list.length === 0) return [];
  const rows = list.map((e) => eventRows(clock, e));
  await trx('events').insert(rows.map((r) => r.event));
  await trx('outbox').insert(rows.map((r) => r.outbox));
  return rows.map((r) => r.event.id);
}

export async function emitEvent(trx: Trx, clock: Clock, e: NewEvent): Promise<string> {
  return (await emitEvents(trx, clock, [e]))[0]!;
}

export interface EventRow {
  id: string;
  tenant_id: string;
  type: EventType;
  object_id: string;
  data: Record<string, unknown>;
  created_at: Date;
}

export function eventJson(e: EventRow) {
  return { id: e.id, object: 'event' as const, type: e.type, created_at: e.created_at.toISOString(), data: { object: e.data } };
}
