/** Builds a gateway on a test database with a manual clock, and seeds tenants with keys. */
import type { Db } from '../../gateway/db/knex.js';
import { loadConfig, type Config } from '../../gateway/config.js';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { buildApp, type App, type AppOptions } from '../../gateway/app.js';
import { ManualClock } from '../../gateway/clock.js';
import { createTenant } from '../../gateway/tenants/tenants.js';
import { createApiKey, type Role } from '../../gateway/tenants/api-keys.js';
import type { SandboxSimulator } from '../../adapters/sandbox/simulator.js';
import type { PaymentAdapter } from '../../adapters/contract.js';

export const PUBLIC_URL = 'http://feegate.test';

export interface TestApp {
  app: App;
  sim: SandboxSimulator;
  clock: ManualClock;
  db: Db;
  close(): Promise<void>;
}

export const TEST_MASTER_KEY = crypto.randomBytes(32).toString('base64');

/** The dev CA the tests share (created once per machine, race-safe). */
export const TEST_DEV_CA_DIR = path.join(os.tmpdir(), 'feegate-test-dev-ca');

/** Test receivers listen on loopback, which the outbound URL guard refuses unless an operator allows it. */
export const LOOPBACK_ALLOWED = { allowedPrivateHosts: ['127.0.0.1'] };

export async function makeApp(
  db: Db,
  overrides: Partial<Config> = {},
  clock = new ManualClock('2026-03-10T02:00:00Z'),
  opts: Partial<AppOptions> = {},
): Promise<TestApp> {
  const config = loadConfig(
    {},
    {
      publicUrl: PUBLIC_URL,
      dataDir: '/nonexistent-test-data-dir',
      devCaDir: TEST_DEV_CA_DIR,
      sandbox: true,
      jobs: false,
      masterKey: TEST_MASTER_KEY,
      ...overrides,
    },
  );
  const app = await buildApp({ config, db, clock, logger: false, ...opts });
  return { app, sim: app.simulators?.sandbox as SandboxSimulator, clock, db, close: () => app.close() };
}

export interface Seeded {
  tenantId: string;
  code: string;
  keys: Record<Role, string>;
}

let counter = 0;
export async function seedTenant(db: Db, clock: ManualClock, code = `ward-${process.pid}-${++counter}`): Promise<Seeded> {
  return db.transaction(async (trx) => {
    const tenant = await createTenant(trx, clock, { code, name: `UBND ${code}`, kind: 'agency', taxCode: '0101234567' }, 'test');
    const keys = {} as Record<Role, string>;
    for (const role of ['integration', 'finance', 'admin'] as const) {
      keys[role] = (await createApiKey(trx, clock, { tenantId: tenant.id, role, mode: 'test', actor: 'test' })).secret;
    }
    return { tenantId: tenant.id, code, keys };
  });
}

export interface CallResult {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Record<string, unknown>;
}

/** A small client over app.inject. */
export function client(app: App, key?: string) {
  const call = async (method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}): Promise<CallResult> => {
    const res = await app.inject({
      method,
      url,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      payload: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    let parsed: unknown = res.body;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      /* not JSON */
    }
    return { status: res.statusCode, body: parsed, headers: res.headers };
  };
  return {
    get: (url: string, headers?: Record<string, string>) => call('GET', url, undefined, headers),
    post: (url: string, body?: unknown, headers?: Record<string, string>) => call('POST', url, body ?? {}, headers),
  };
}

export function billInput(overrides: Record<string, unknown> = {}) {
  return {
    external_ref: `HS-${Math.random().toString(36).slice(2, 10)}`,
    kind: 'procedure_fee',
    dossier_code: 'G01.123.456.789-260310-0001',
    procedure_code: '1.001612',
    description: 'Lệ phí đăng ký hộ tịch',
    payer: { name: 'Trần Thị Bình', id_number: '001190012345' },
    items: [
      { fee_code: 'LP01', name: 'Lệ phí đăng ký khai sinh', amount: 50_000, legal_basis: 'TT 85/2019/TT-BTC' },
      { fee_code: 'LP02', name: 'Phí sao y', amount: 8_000 },
    ],
    ...overrides,
  };
}

/** Creates a bill and a sandbox payment for it; returns both. */
export async function billAndPayment(app: App, key: string, billOverrides: Record<string, unknown> = {}, provider = 'sandbox') {
  const api = client(app, key);
  const bill = await api.post('/v1/bills', billInput(billOverrides));
  if (bill.status !== 201) throw new Error(`bill: ${bill.status} ${JSON.stringify(bill.body)}`);
  const pay = await api.post('/v1/payments', { bill_id: bill.body.id, provider });
  if (pay.status !== 201) throw new Error(`payment: ${pay.status} ${JSON.stringify(pay.body)}`);
  return { bill: bill.body, payment: pay.body };
}

/** The payer at the provider: follows the checkout URL (first visit creates the order), then chooses. */
export async function payAt(
  sim: SandboxSimulator,
  payment: { reference: string; checkout: { url?: string } | null },
  result: 'success' | 'fail' | 'cancel' = 'success',
) {
  if (!sim.orders.has(payment.reference)) sim.openUrl(payment.checkout!.url!);
  const order = await sim.complete(payment.reference, result);
  if (!order) throw new Error(`no order ${payment.reference} at the provider`);
  return order;
}

/** Makes the sandbox adapters give up after `ms` (instead of 5 s) for the rest of the test. */
export function shortAdapterTimeout(app: App, ms: number): () => void {
  const providers = app.deps.providers;
  const orig = providers.context.bind(providers);
  providers.context = async (p, tid) => {
    const c = await orig(p, tid);
    return { ...c, credentials: { ...c.credentials, timeout_ms: String(ms) } };
  };
  return () => {
    providers.context = orig;
  };
}

/**
 * Runs `fn` while the adapter's refund call loses its answer: after the provider made the refund
 * (`reached`), or before the request left (it never reached the provider).
 */
export async function losingRefundAnswers<T>(adapter: PaymentAdapter, reached: boolean, fn: () => Promise<T>): Promise<T> {
  const real = adapter.refund;
  adapter.refund = async (ctx, req) => {
    if (reached) await real.call(adapter, ctx, req);
    throw new Error(reached ? 'connection reset after the provider answered' : 'socket hang up before the request was sent');
  };
  try {
    return await fn();
  } finally {
    adapter.refund = real;
  }
}
