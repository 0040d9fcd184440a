import { eachDb, sealSettled } from './helpers/db.js';
import { billAndPayment, payAt, client, makeApp, seedTenant } from './helpers/app.js';
import { GENESIS_HASH, chainHash, sealAudit, verifyAudit } from '../gateway/audit/audit-log.js';
import { runCli } from '../gateway/cli/main.js';
import type { Db } from '../gateway/db/knex.js';

async function cli(db: Db, argv: string[]) {
  const out: string[] = [];
  const code = await runCli(argv, { db, io: { out: (l) => out.push(l), err: (l) => out.push(l) } });
  return { code, text: out.join('\n') };
}

eachDb('audit: every change is recorded, sealed into a chain, and verifies', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const { payment } = await billAndPayment(env.app, ten.keys.integration);
  await payAt(env.sim, payment, 'success');
  await client(env.app, ten.keys.finance).post(`/v1/payments/${payment.id}/refunds`, { amount: 1000 });

  const actions = ((await db('audit_log').where({ tenant_id: ten.tenantId }).orderBy('id').select('action')) as { action: string }[]).map((r) => r.action);
  t.same(actions, [
    'tenant.created',
    'api_key.created',
    'api_key.created',
    'api_key.created',
    'bill.created',
    'payment.created',
    'payment.succeeded',
    'refund.created',
    'payment.partially_refunded',
    'refund.succeeded',
  ]);
  let v = await verifyAudit(db, ten.tenantId);
  t.same(v, { tenantId: ten.tenantId, ok: true, sealed: 0, unsealed: 10 }, 'nothing sealed yet');
  t.equal(await sealSettled(db, [ten.tenantId]), 10);
  t.equal(await sealAudit(db), 0, 'sealing twice seals nothing more');
  v = await verifyAudit(db, ten.tenantId);
  t.same(v, { tenantId: ten.tenantId, ok: true, sealed: 10, unsealed: 0 });

  // The chain is what the spec says: row_hash = sha256(prev_hash || canonical row).
  const rows = (await db('audit_chain').where({ tenant_id: ten.tenantId }).orderBy('seq')) as { seq: string; prev_hash: string; row_hash: string }[];
  t.equal(rows.length, 10);
  t.equal(rows[0]!.prev_hash, GENESIS_HASH);
  for (let i = 1; i < rows.length; i++) t.equal(rows[i]!.prev_hash, rows[i - 1]!.row_hash);
  t.not(chainHash(GENESIS_HASH, '{}'), rows[0]!.row_hash);

  const ok = await cli(db, ['audit', 'verify']);
  t.equal(ok.code, 0);
  t.match(ok.text, /OK, 10 sealed record\(s\), 0 not yet sealed/);

  // The database refuses edits and deletes of history.
  await t.rejects(db('audit_log').where({ tenant_id: ten.tenantId }).update({ action: 'x' }), /append-only/);
  await t.rejects(db('audit_log').where({ tenant_id: ten.tenantId }).del(), /append-only/);
  await t.rejects(db('audit_chain').where({ tenant_id: ten.tenantId }).update({ row_hash: 'x' }), /append-only/);
  await t.rejects(db('audit_chain').where({ tenant_id: ten.tenantId }).del(), /append-only/);
  await t.rejects(db('ledger_transfers').update({ amount: 1 }), /append-only/);
  await t.rejects(db('ledger_transfers').del(), /append-only/);
});

eachDb('audit: a tampered row is named as the first broken link', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  await billAndPayment(env.app, ten.keys.integration);
  await sealSettled(db, [ten.tenantId]);
  // A superuser who disables the trigger can still edit a row: the chain shows it.
  const target = { id: ((await db('audit_chain').where({ tenant_id: ten.tenantId, seq: 6 }).first()) as { audit_id: string | number }).audit_id };
  await db.raw('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
  await db('audit_log')
    .where({ id: target.id })
    .update({ data: JSON.stringify({ amount: 1 }) });
  await db.raw('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
  const v = await verifyAudit(db, ten.tenantId);
  t.equal(v.ok, false);
  t.match(v.broken, { seq: 6, id: Number(target.id), reason: /row_hash does not match/ });
  const res = await cli(db, ['audit', 'verify', '--tenant', ten.code]);
  t.equal(res.code, 1, 'the command fails');
  t.match(res.text, new RegExp(`BROKEN at seq 6 \\(audit_log.id ${target.id}\\)`));

  // Removing the last rows is caught by the chain head.
  const ten2 = await seedTenant(db, env.clock);
  await sealSettled(db, [ten2.tenantId]);
  await db.raw('ALTER TABLE audit_chain DISABLE TRIGGER audit_chain_append_only');
  await db('audit_chain').where({ tenant_id: ten2.tenantId, seq: 4 }).del();
  await db.raw('ALTER TABLE audit_chain ENABLE TRIGGER audit_chain_append_only');
  const v2 = await verifyAudit(db, ten2.tenantId);
  t.equal(v2.ok, false);
  t.match(v2.broken?.reason, /chain head/);
});

eachDb('cli: tenants and keys', async (t, { db }) => {
  const created = await cli(db, ['tenants', 'create', '--code', 'truong-th-a', '--name', 'Trường Tiểu học A', '--tax-code', '0101234599', '--kind', 'school']);
  t.equal(created.code, 0);
  const list = await cli(db, ['tenants', 'list']);
  t.match(list.text, /truong-th-a {2}school {2}MST 0101234599 {2}Trường Tiểu học A/);
  const key = await cli(db, ['keys', 'create', '--tenant', 'truong-th-a', '--role', 'finance', '--label', 'kế toán']);
  t.equal(key.code, 0);
  const secret = key.text.split('\n')[1]!;
  t.match(secret, /^fg_test_[A-Za-z0-9_-]{32}$/);
  const keys = await cli(db, ['keys', 'list', '--tenant', 'truong-th-a']);
  t.match(keys.text, new RegExp(`${secret.slice(0, 12)}… {2}finance {2}test {2}active {2}kế toán`));
  t.notOk(keys.text.includes(secret), 'the secret is never listed');
  const id = keys.text.split(/\s+/)[0]!;
  t.equal((await cli(db, ['keys', 'revoke', '--tenant', 'truong-th-a', '--id', id])).code, 0);
  t.match((await cli(db, ['keys', 'list', '--tenant', 'truong-th-a'])).text, /REVOKED/);
  t.equal((await cli(db, ['keys', 'create', '--tenant', 'nope', '--role', 'finance'])).code, 1, 'unknown tenant');
  t.not((await cli(db, ['keys', 'create', '--tenant', 'truong-th-a', '--role', 'boss'])).code, 0, 'unknown role');
  const dup = await cli(db, ['tenants', 'create', '--code', 'truong-th-a', '--name', 'X', '--tax-code', '0101234599']);
  t.equal(dup.code, 1, 'duplicate code refused');
  t.match((await cli(db, ['errors'])).text, /\| `FEEGATE_ERR_BILL_NOT_FOUND` \| 404 \|/);
  const now = new Date();
  const [dead] = (await db('outbox')
    .insert({ kind: 'x', payload: '{}', status: 'dead', attempts: 7, run_at: now, created_at: now, updated_at: now, last_error: 'gone' })
    .returning('id')) as { id: string | number }[];
  t.match((await cli(db, ['outbox', 'requeue', String(dead!.id)])).text, /requeued/);
  t.equal(((await db('outbox').where({ id: dead!.id }).first()) as { status: string }).status, 'pending');
  t.equal((await cli(db, ['outbox', 'requeue', String(dead!.id)])).code, 1, 'only dead rows are requeued');
});
