/**
 * Tenant isolation as a matrix: every role × every authenticated route × own/other tenant.
 * The expected roles are written here from the spec, independently of the routes' config.
 */
import { eachDb } from './helpers/db.js';
import { billAndPayment, payAt, billInput, client, makeApp, seedTenant, type Seeded } from './helpers/app.js';
import type { Role } from '../gateway/tenants/api-keys.js';
import { issueForPayment } from '../receipts/issue.js';

interface World {
  bill: string;
  payment: string;
  key: string;
  tenant: string;
  event: string;
  endpoint: string;
  dead: string;
  receipt: string;
}

interface RouteCase {
  method: 'GET' | 'POST';
  /** The route as OpenAPI names it, to prove the matrix covers every route. */
  route: string;
  url: (w: World) => string;
  body?: (w: World) => unknown;
  allowed: Role[];
  ok: number;
  /** Routes addressed by another tenant's id answer 404; tenant-wide routes have no "other" form. */
  other: number | 'n/a';
}

const ALL: Role[] = ['integration', 'finance', 'admin'];
const ROUTES: RouteCase[] = [
  { method: 'POST', route: '/v1/bills', url: () => '/v1/bills', body: () => billInput(), allowed: ['integration', 'admin'], ok: 201, other: 'n/a' },
  { method: 'GET', route: '/v1/bills', url: () => '/v1/bills?limit=100', allowed: ALL, ok: 200, other: 'n/a' },
  { method: 'GET', route: '/v1/bills/{id}', url: (w) => `/v1/bills/${w.bill}`, allowed: ALL, ok: 200, other: 404 },
  { method: 'POST', route: '/v1/bills/{id}/cancel', url: (w) => `/v1/bills/${w.bill}/cancel`, allowed: ['integration', 'admin'], ok: 409, other: 404 },
  {
    method: 'POST',
    route: '/v1/payments',
    url: () => '/v1/payments',
    body: (w) => ({ bill_id: w.bill, provider: 'sandbox' }),
    allowed: ['integration', 'admin'],
    ok: 409,
    other: 404,
  },
  { method: 'GET', route: '/v1/payments', url: (w) => `/v1/payments?bill_id=${w.bill}`, allowed: ALL, ok: 200, other: 'n/a' },
  { method: 'GET', route: '/v1/payments/{id}', url: (w) => `/v1/payments/${w.payment}`, allowed: ALL, ok: 200, other: 404 },
  {
    method: 'POST',
    route: '/v1/payments/{id}/refunds',
    url: (w) => `/v1/payments/${w.payment}/refunds`,
    body: () => ({ amount: 1000 }),
    allowed: ['finance', 'admin'],
    ok: 201,
    other: 404,
  },
  { method: 'GET', route: '/v1/payments/{id}/refunds', url: (w) => `/v1/payments/${w.payment}/refunds`, allowed: ALL, ok: 200, other: 404 },
  { method: 'GET', route: '/v1/tenant', url: () => '/v1/tenant', allowed: ALL, ok: 200, other: 'n/a' },
  { method: 'GET', route: '/v1/api-keys', url: () => '/v1/api-keys', allowed: ['admin'], ok: 200, other: 'n/a' },
  { method: 'POST', route: '/v1/api-keys', url: () => '/v1/api-keys', body: () => ({ role: 'integration' }), allowed: ['admin'], ok: 201, other: 'n/a' },
  { method: 'POST', route: '/v1/api-keys/{id}/revoke', url: (w) => `/v1/api-keys/${w.key}/revoke`, allowed: ['admin'], ok: 200, other: 404 },
  { method: 'GET', route: '/v1/ledger/balances', url: () => '/v1/ledger/balances', allowed: ['finance', 'admin'], ok: 200, other: 'n/a' },
  { method: 'GET', route: '/v1/audit/verify', url: () => '/v1/audit/verify', allowed: ['finance', 'admin'], ok: 200, other: 'n/a' },
  {
    method: 'POST',
    route: '/v1/webhook-endpoints',
    url: () => '/v1/webhook-endpoints',
    body: () => ({ url: 'https://school.example/hooks', events: ['*'] }),
    allowed: ['admin'],
    ok: 201,
    other: 'n/a',
  },
  { method: 'GET', route: '/v1/webhook-endpoints', url: () => '/v1/webhook-endpoints', allowed: ['admin'], ok: 200, other: 'n/a' },
  {
    method: 'POST',
    route: '/v1/webhook-endpoints/{id}/remove',
    url: (w) => `/v1/webhook-endpoints/${w.endpoint}/remove`,
    allowed: ['admin'],
    ok: 200,
    other: 404,
  },
  { method: 'GET', route: '/v1/events', url: () => '/v1/events', allowed: ['finance', 'admin'], ok: 200, other: 'n/a' },
  { method: 'GET', route: '/v1/events/{id}', url: (w) => `/v1/events/${w.event}`, allowed: ['finance', 'admin'], ok: 200, other: 404 },
  { method: 'GET', route: '/v1/events/{id}/attempts', url: (w) => `/v1/events/${w.event}/attempts`, allowed: ['finance', 'admin'], ok: 200, other: 404 },
  { method: 'POST', route: '/v1/events/{id}/resend', url: (w) => `/v1/events/${w.event}/resend`, allowed: ['admin'], ok: 200, other: 404 },
  { method: 'GET', route: '/v1/outbox/dead', url: () => '/v1/outbox/dead', allowed: ['admin'], ok: 200, other: 'n/a' },
  { method: 'POST', route: '/v1/outbox/{id}/requeue', url: (w) => `/v1/outbox/${w.dead}/requeue`, allowed: ['admin'], ok: 200, other: 404 },
  { method: 'GET', route: '/v1/receipts', url: () => '/v1/receipts?limit=100', allowed: ALL, ok: 200, other: 'n/a' },
  { method: 'GET', route: '/v1/receipts/{id}', url: (w) => `/v1/receipts/${w.receipt}`, allowed: ALL, ok: 200, other: 404 },
  { method: 'GET', route: '/v1/receipts/{id}/xml', url: (w) => `/v1/receipts/${w.receipt}/xml`, allowed: ALL, ok: 200, other: 404 },
  { method: 'GET', route: '/v1/receipt_series', url: () => '/v1/receipt_series', allowed: ALL, ok: 200, other: 'n/a' },
  {
    method: 'POST',
    route: '/v1/receipt_series',
    url: () => '/v1/receipt_series',
    body: () => ({ template_symbol: '01BLP0-002', series_letters: 'AB' }),
    allowed: ['admin'],
    ok: 201,
    other: 'n/a',
  },
  { method: 'GET', route: '/v1/provider-credentials', url: () => '/v1/provider-credentials', allowed: ['admin'], ok: 200, other: 'n/a' },
  {
    method: 'POST',
    route: '/v1/provider-credentials/{provider}',
    url: () => '/v1/provider-credentials/paygov',
    body: () => ({ credentials: { partner_code: 'P1', secret: 's3cret-value', endpoint: 'https://hub.example' } }),
    allowed: ['admin'],
    ok: 200,
    other: 'n/a',
  },
  {
    method: 'POST',
    route: '/v1/provider-credentials/{provider}/remove',
    url: () => '/v1/provider-credentials/paygov/remove',
    allowed: ['admin'],
    ok: 200,
    other: 'n/a',
  },
  { method: 'GET', route: '/v1/signing_certs', url: () => '/v1/signing_certs', allowed: ['finance', 'admin'], ok: 200, other: 'n/a' },
];

eachDb('tenant isolation: every role × every route × own/other tenant', async (t, { db }) => {
  const env = await makeApp(db);
  t.teardown(env.close);
  const a = await seedTenant(db, env.clock);
  const b = await seedTenant(db, env.clock);

  // Every authenticated route the API documents is in the matrix.
  const spec = (await env.app.inject('/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> };
  const documented = Object.entries(spec.paths)
    // Public by design: provider callbacks, the browser return, and receipt verification (anyone may verify).
    .filter(([p]) => p.startsWith('/v1/') && !p.startsWith('/v1/notify') && !p.startsWith('/v1/return') && p !== '/v1/receipts/verify')
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();
  t.same(documented, ROUTES.map((r) => `${r.method} ${r.route}`).sort(), 'the matrix covers every /v1 route');

  // A world per tenant: a paid bill with its payment, and a spare API key.
  const world = async (s: Seeded): Promise<World> => {
    const { bill, payment } = await billAndPayment(env.app, s.keys.integration);
    await payAt(env.sim, payment, 'success');
    const key = (await client(env.app, s.keys.admin).post('/v1/api-keys', { role: 'finance', label: 'spare' })).body;
    const endpoint = (await client(env.app, s.keys.admin).post('/v1/webhook-endpoints', { url: 'https://school.example/hooks', events: ['*'] })).body;
    const event = (await db('events').where({ tenant_id: s.tenantId, object_id: payment.id }).first('id')) as { id: string };
    const now = env.clock.now();
    const [dead] = (await db('outbox')
      .insert({
        tenant_id: s.tenantId,
        kind: 'test.dead',
        payload: '{}',
        status: 'dead',
        attempts: 3,
        run_at: now,
        created_at: now,
        updated_at: now,
        last_error: 'x',
      })
      .returning('id')) as { id: string | number }[];
    const receipt = await db.transaction((trx) => issueForPayment(trx, env.app.deps, payment.id));
    return {
      bill: bill.id,
      payment: payment.id,
      key: key.id,
      tenant: s.tenantId,
      event: event.id,
      endpoint: endpoint.id,
      dead: String(dead!.id),
      receipt: receipt.id,
    };
  };

  for (const role of ALL) {
    for (const r of ROUTES) {
      for (const side of ['own', 'other'] as const) {
        if (side === 'other' && r.other === 'n/a') continue;
        const mine = await world(a);
        const theirs = await world(b);
        const target = side === 'own' ? mine : theirs;
        const api = client(env.app, a.keys[role]);
        const res = r.method === 'GET' ? await api.get(r.url(target)) : await api.post(r.url(target), r.body ? r.body(target) : {});
        const label = `${role} ${r.method} ${r.route} (${side})`;
        if (!r.allowed.includes(role)) {
          t.equal(res.status, 403, `${label}: forbidden`);
          t.equal(res.body.error.code, 'FEEGATE_ERR_FORBIDDEN_ROLE');
        } else if (side === 'own') {
          t.equal(res.status, r.ok, `${label}: ${r.ok}`);
        } else {
          t.equal(res.status, r.other, `${label}: ${r.other}`);
        }
        // Whatever the answer, nothing of the other tenant leaks into it.
        const text = JSON.stringify(res.body);
        for (const id of [theirs.tenant, theirs.bill, theirs.payment, theirs.key, theirs.event, theirs.endpoint, theirs.receipt]) {
          if (side === 'own' || res.status >= 400) t.notOk(text.includes(id), `${label}: no other-tenant id in the answer`);
        }
      }
    }
  }
  // The other tenant's data was not touched by any of it.
  const bRows = (await db('payments').where({ tenant_id: b.tenantId }).select('status')) as { status: string }[];
  t.ok(
    bRows.every((p) => p.status === 'succeeded'),
    "no refund or change reached the other tenant's payments",
  );
  const [{ n }] = (await db('api_keys').where({ tenant_id: b.tenantId }).whereNotNull('revoked_at').count({ n: '*' })) as [{ n: string }];
  t.equal(Number(n), 0, 'no key of the other tenant was revoked');
  const [{ m }] = (await db('webhook_endpoints').where({ tenant_id: b.tenantId }).whereNot({ status: 'enabled' }).count({ m: '*' })) as [{ m: string }];
  t.equal(Number(m), 0, 'no endpoint of the other tenant was removed');
  const [{ q }] = (await db('outbox').where({ tenant_id: b.tenantId, kind: 'test.dead' }).whereNot({ status: 'dead' }).count({ q: '*' })) as [{ q: string }];
  t.equal(Number(q), 0, 'no dead row of the other tenant was requeued');
});
