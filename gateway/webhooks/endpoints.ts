/** Webhook endpoints of a tenant: URL, the events it wants, and a signing secret shown once. */
import crypto from 'node:crypto';
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { appendAudit } from '../audit/audit-log.js';
import { fail } from '../errors.js';

export interface EndpointRow {
  id: string;
  tenant_id: string;
  url: string;
  events: string[];
  description: string;
  secret_enc: string;
  status: 'enabled' | 'disabled' | 'removed';
  disabled_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

export const secretPurpose = (endpointId: string) => `webhook-endpoint:${endpointId}`;

export function endpointJson(e: EndpointRow) {
  return {
    id: e.id,
    object: 'webhook_endpoint' as const,
    url: e.url,
    events: e.events,
    description: e.description,
    status: e.status,
    disabled_reason: e.disabled_reason,
    created_at: e.created_at.toISOString(),
  };
}

export async function createEndpoint(
  trx: Trx,
  clock: Clock,
  box: SecretBox,
  a: { tenantId: string; url: string; events: string[]; description?: string; actor: string },
): Promise<{ endpoint: EndpointRow; secret: string }> {
  const id = crypto.randomUUID();
  const secret = `whsec_${crypto.randomBytes(24).toString('base64url')}`;
  const now = clock.now();
  const [endpoint] = (await trx('webhook_endpoints')
    .insert({
      id,
      tenant_id: a.tenantId,
      url: a.url,
      events: a.events,
      description: a.description ?? '',
      secret_enc: box.seal(secret, secretPurpose(id)),
      created_at: now,
      updated_at: now,
    })
    .returning('*')) as EndpointRow[];
  await appendAudit(trx, clock, {
    tenantId: a.tenantId,
    actor: a.actor,
    action: 'webhook_endpoint.created',
    entityType: 'webhook_endpoint',
    entityId: id,
    data: { url: a.url, events: a.events },
  });
  return { endpoint: endpoint!, secret };
}

/** Removing an endpoint stops its deliveries, queued ones included. */
export async function removeEndpoint(trx: Trx, clock: Clock, tenantId: string, id: string, actor: string): Promise<EndpointRow> {
  const [row] = (await trx('webhook_endpoints')
    .where({ id, tenant_id: tenantId })
    .whereNot({ status: 'removed' })
    .update({ status: 'removed', updated_at: clock.now() })
    .returning('*')) as EndpointRow[];
  if (!row) fail('FEEGATE_ERR_WEBHOOK_ENDPOINT_NOT_FOUND');
  await cancelDeliveries(trx, clock, id, 'endpoint removed');
  await appendAudit(trx, clock, { tenantId, actor, action: 'webhook_endpoint.removed', entityType: 'webhook_endpoint', entityId: id, data: {} });
  return row;
}

export async function cancelDeliveries(trx: Trx | Db, clock: Clock, endpointId: string, why: string): Promise<void> {
  await trx('outbox')
    .where({ kind: 'webhook.deliver', status: 'pending' })
    .whereRaw(`payload->>'endpoint_id' = ?`, [endpointId])
    .update({ status: 'cancelled', last_error: why, updated_at: clock.now(), done_at: clock.now() });
}
