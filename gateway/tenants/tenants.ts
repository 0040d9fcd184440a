/** Tenants: the agencies and schools that collect fees. */
import type { Db, Trx } from '../db/knex.js';
import type { Clock } from '../clock.js';
import { appendAudit } from '../audit/audit-log.js';

export interface Tenant {
  id: string;
  code: string;
  name: string;
  kind: 'agency' | 'school';
  tax_code: string;
  address: string;
  budget_code: string | null;
  created_at: Date;
}

export interface NewTenant {
  code: string;
  name: string;
  kind: 'agency' | 'school';
  taxCode: string;
  address?: string;
  budgetCode?: string;
}

export async function createTenant(trx: Trx, clock: Clock, t: NewTenant, actor = 'cli'): Promise<Tenant> {
  const [row] = (await trx('tenants')
    .insert({
      code: t.code,
      name: t.name,
      kind: t.kind,
      tax_code: t.taxCode,
      address: t.address ?? '',
      budget_code: t.budgetCode ?? null,
      created_at: clock.now(),
    })
    .returning('*')) as Tenant[];
  await appendAudit(trx, clock, {
    tenantId: row!.id,
    actor,
    action: 'tenant.created',
    entityType: 'tenant',
    entityId: row!.id,
    data: { code: t.code, name: t.name, kind: t.kind, tax_code: t.taxCode },
  });
  return row!;
}

export async function findTenant(db: Db | Trx, idOrCode: string): Promise<Tenant | undefined> {
  const isUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(idOrCode);
  return (await db('tenants')
    .where(isUuid ? { id: idOrCode } : { code: idOrCode })
    .first()) as Tenant | undefined;
}

export async function listTenants(db: Db): Promise<Tenant[]> {
  return (await db('tenants').orderBy('created_at')) as Tenant[];
}
