/**
 * Development conveniences for `npm start`: a demo tenant with a test API key (kept in the data
 * directory, a dev fixture), and a fresh demo bill with a sandbox payment to click through.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Deps } from './deps.js';
import { createTenant, findTenant } from './tenants/tenants.js';
import { createApiKey } from './tenants/api-keys.js';
import { createBill } from './bills/bills.js';
import { createPayment } from './payments/payments.js';

export const DEMO_TENANT = 'demo-ward';

export async function ensureDemo(deps: Deps): Promise<{ apiKey: string; payUrl: string | undefined; billId: string }> {
  const { db, clock, config } = deps;
  const keyFile = path.join(config.dataDir, 'dev-demo-api-key.txt');
  let tenant = await findTenant(db, DEMO_TENANT);
  let apiKey = fs.existsSync(keyFile) ? fs.readFileSync(keyFile, 'utf8').trim() : '';
  if (!tenant || !apiKey || !(await deps.keys.resolve(apiKey))) {
    apiKey = await db.transaction(async (trx) => {
      tenant ??= await createTenant(
        trx,
        clock,
        {
          code: DEMO_TENANT,
          name: 'UBND Phường Dịch Vọng (demo)',
          kind: 'agency',
          taxCode: '0101234567',
          address: 'Quận Cầu Giấy, Hà Nội',
        },
        'demo',
      );
      const { secret } = await createApiKey(trx, clock, { tenantId: tenant.id, role: 'admin', mode: 'test', label: 'demo (dev fixture)', actor: 'demo' });
      return secret;
    });
    fs.mkdirSync(config.dataDir, { recursive: true });
    fs.writeFileSync(keyFile, apiKey + '\n', { mode: 0o600 });
    deps.keys.invalidate();
  }
  const who = (await deps.keys.resolve(apiKey))!;
  const stamp = clock
    .now()
    .toISOString()
    .replace(/[-:.TZ]/g, '');
  const { bill } = await createBill(db, clock, who, {
    external_ref: `demo-${stamp}`,
    kind: 'procedure_fee',
    dossier_code: `G01.${stamp.slice(0, 8)}.DEMO`,
    procedure_code: '1.001612',
    description: 'Lệ phí cấp bản sao trích lục hộ tịch (demo)',
    payer: { name: 'Nguyễn Văn An' },
    items: [{ fee_code: 'LP-HT-01', name: 'Lệ phí cấp bản sao trích lục', amount: 8000, legal_basis: 'Thông tư 85/2019/TT-BTC' }],
  });
  const payment = await createPayment(deps, who, { bill_id: bill.id, provider: 'sandbox' });
  return { apiKey, payUrl: payment.checkout?.url, billId: bill.id };
}
