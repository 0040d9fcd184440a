/** Upgrading a database with audit history to the audit_chain table keeps every chain valid. */
import { eachDb, sealSettled } from './helpers/db.js';
import { migrationSource } from '../gateway/db/migrations/index.js';
import { ManualClock } from '../gateway/clock.js';
import { createTenant } from '../gateway/tenants/tenants.js';
import { appendAudit, canonicalRecord, chainHash, GENESIS_HASH, verifyAudit } from '../gateway/audit/audit-log.js';

eachDb('migration 0003 carries sealed and unsealed audit records into the new chain', async (t, { db }) => {
  await db.raw('DROP SCHEMA public CASCADE');
  await db.raw('CREATE SCHEMA public');
  await db.migrate.up({ migrationSource });
  await db.migrate.up({ migrationSource });
  const clock = new ManualClock();
  const tenant = await db.transaction((trx) => createTenant(trx, clock, { code: 'old-ward', name: 'Phường Cũ', kind: 'agency', taxCode: '0101234567' }));
  for (let i = 0; i < 3; i++)
    await db.transaction((trx) => appendAudit(trx, clock, { tenantId: tenant.id, actor: 'x', action: `old.${i}`, entityType: 'x', entityId: String(i) }));
  // Seal the first two records the old way (columns on audit_log), as the 0001 sealer did.
  const rows = (await db('audit_log').where({ tenant_id: tenant.id }).orderBy('id')) as Parameters<typeof canonicalRecord>[0][];
  let prev = GENESIS_HASH;
  for (const [i, row] of rows.slice(0, 2).entries()) {
    const hash = chainHash(prev, canonicalRecord(row, i + 1));
    await db('audit_log')
      .where({ id: row.id })
      .update({ seq: i + 1, prev_hash: prev, row_hash: hash });
    prev = hash;
  }
  await db('audit_chain_heads').insert({ tenant_id: tenant.id, seq: 2, hash: prev });

  await db.migrate.latest({ migrationSource });
  const afterUpgrade = await verifyAudit(db, tenant.id);
  t.same(afterUpgrade, { tenantId: tenant.id, ok: true, sealed: 2, unsealed: 2 }, 'old links carried over; the rest waits for the sealer');
  await db.transaction((trx) => appendAudit(trx, clock, { tenantId: tenant.id, actor: 'x', action: 'new.0', entityType: 'x', entityId: 'n' }));
  t.equal(await sealSettled(db, [tenant.id]), 3);
  t.same(await verifyAudit(db, tenant.id), { tenantId: tenant.id, ok: true, sealed: 5, unsealed: 0 });
  const actions = (
    (await db('audit_chain as c').join('audit_log as a', 'a.id', 'c.audit_id').where('c.tenant_id', tenant.id).orderBy('c.seq').select('a.action')) as {
      action: string;
    }[]
  ).map((r) => r.action);
  t.same(actions, ['tenant.created', 'old.0', 'old.1', 'old.2', 'new.0'], 'the chain keeps its order and goes on');
});
