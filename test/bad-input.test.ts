/* eslint-disable @typescript-eslint/no-explicit-any -- these tests read arbitrary JSON answers */
import { eachDb, snapshot } from './helpers/db.js';
import { billAndPayment, payAt, billInput, client, makeApp, seedTenant } from './helpers/app.js';

eachDb('bad input: a clear 4xx with a stable code, and nothing written', async (t, { db }) => {
  const env = await makeApp(db, { bodyLimit: 64 * 1024 });
  t.teardown(env.close);
  const ten = await seedTenant(db, env.clock);
  const other = await seedTenant(db, env.clock);
  const paid = await billAndPayment(env.app, ten.keys.integration);
  await payAt(env.sim, paid.payment, 'success');
  const cancelled = (await client(env.app, ten.keys.integration).post('/v1/bills', billInput())).body;
  await client(env.app, ten.keys.integration).post(`/v1/bills/${cancelled.id}/cancel`);
  const otherBill = (await client(env.app, other.keys.integration).post('/v1/bills', billInput())).body;
  const open = (await client(env.app, ten.keys.integration).post('/v1/bills', billInput())).body;
  const revoked = (await client(env.app, ten.keys.admin).post('/v1/api-keys', { role: 'integration' })).body;
  await client(env.app, ten.keys.admin).post(`/v1/api-keys/${revoked.id}/revoke`);

  const api = client(env.app, ten.keys.integration);
  const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const item = (amount: unknown) => billInput({ items: [{ fee_code: 'F', name: 'Fee', amount }] });
  const cases: { name: string; run: () => Promise<{ status: number; body: any }>; status: number; code: string }[] = [
    { name: 'float amount', run: () => api.post('/v1/bills', item(1000.5)), status: 400, code: 'FEEGATE_ERR_AMOUNT_INVALID' },
    { name: 'negative amount', run: () => api.post('/v1/bills', item(-1000)), status: 400, code: 'FEEGATE_ERR_AMOUNT_INVALID' },
    { name: 'zero amount', run: () => api.post('/v1/bills', item(0)), status: 400, code: 'FEEGATE_ERR_AMOUNT_INVALID' },
    { name: 'amount above 10^15', run: () => api.post('/v1/bills', item(1e15 + 1)), status: 400, code: 'FEEGATE_ERR_AMOUNT_INVALID' },
    { name: 'string amount', run: () => api.post('/v1/bills', item('1000')), status: 400, code: 'FEEGATE_ERR_AMOUNT_INVALID' },
    {
      name: 'items above 10^15 in total',
      run: () =>
        api.post(
          '/v1/bills',
          billInput({
            items: [
              { fee_code: 'A', name: 'A', amount: 1e15 },
              { fee_code: 'B', name: 'B', amount: 1 },
            ],
          }),
        ),
      status: 400,
      code: 'FEEGATE_ERR_AMOUNT_INVALID',
    },
    { name: 'total that is not the sum', run: () => api.post('/v1/bills', billInput({ total_amount: 1 })), status: 400, code: 'FEEGATE_ERR_AMOUNT_MISMATCH' },
    {
      name: 'float payment amount',
      run: () => api.post('/v1/payments', { bill_id: open.id, provider: 'sandbox', amount: 10.25 }),
      status: 400,
      code: 'FEEGATE_ERR_AMOUNT_INVALID',
    },
    { name: 'tuition bill without student', run: () => api.post('/v1/bills', billInput({ kind: 'tuition' })), status: 400, code: 'FEEGATE_ERR_VALIDATION' },
    { name: 'unknown field', run: () => api.post('/v1/bills', billInput({ surprise: 1 })), status: 400, code: 'FEEGATE_ERR_VALIDATION' },
    {
      name: 'unknown bill',
      run: () => api.post('/v1/payments', { bill_id: '00000000-0000-4000-8000-000000000000', provider: 'sandbox' }),
      status: 404,
      code: 'FEEGATE_ERR_BILL_NOT_FOUND',
    },
    {
      name: "another tenant's bill",
      run: () => api.post('/v1/payments', { bill_id: otherBill.id, provider: 'sandbox' }),
      status: 404,
      code: 'FEEGATE_ERR_BILL_NOT_FOUND',
    },
    {
      name: 'paying a paid bill',
      run: () => api.post('/v1/payments', { bill_id: paid.bill.id, provider: 'sandbox' }),
      status: 409,
      code: 'FEEGATE_ERR_BILL_NOT_PAYABLE',
    },
    {
      name: 'paying a cancelled bill',
      run: () => api.post('/v1/payments', { bill_id: cancelled.id, provider: 'sandbox' }),
      status: 409,
      code: 'FEEGATE_ERR_BILL_NOT_PAYABLE',
    },
    {
      name: 'unknown provider',
      run: () => api.post('/v1/payments', { bill_id: open.id, provider: 'nosuchpay' }),
      status: 400,
      code: 'FEEGATE_ERR_PROVIDER_UNKNOWN',
    },
    {
      name: 'refund above refundable',
      run: () => client(env.app, ten.keys.finance).post(`/v1/payments/${paid.payment.id}/refunds`, { amount: paid.payment.amount + 1 }),
      status: 400,
      code: 'FEEGATE_ERR_REFUND_EXCEEDS_REFUNDABLE',
    },
    { name: 'malformed JSON', run: () => api.post('/v1/bills', '{"external_ref": "x",'), status: 400, code: 'FEEGATE_ERR_MALFORMED_BODY' },
    {
      name: 'oversized body',
      run: () => api.post('/v1/bills', billInput({ description: 'x'.repeat(70 * 1024) })),
      status: 413,
      code: 'FEEGATE_ERR_BODY_TOO_LARGE',
    },
    {
      name: 'not JSON content type',
      run: () => api.post('/v1/bills', 'a=1', { 'content-type': 'text/csv' }),
      status: 415,
      code: 'FEEGATE_ERR_UNSUPPORTED_MEDIA_TYPE',
    },
    { name: 'missing API key', run: () => client(env.app).post('/v1/bills', billInput()), status: 401, code: 'FEEGATE_ERR_AUTH_MISSING' },
    {
      name: 'wrong API key',
      run: () => client(env.app, 'fg_test_' + 'A'.repeat(32)).post('/v1/bills', billInput()),
      status: 401,
      code: 'FEEGATE_ERR_AUTH_INVALID',
    },
    {
      name: 'garbage Authorization',
      run: () => api.post('/v1/bills', billInput(), { authorization: 'Basic Zm9vOmJhcg==' }),
      status: 401,
      code: 'FEEGATE_ERR_AUTH_INVALID',
    },
    { name: 'revoked API key', run: () => client(env.app, revoked.secret).post('/v1/bills', billInput()), status: 401, code: 'FEEGATE_ERR_AUTH_REVOKED' },
    {
      name: 'wrong role (finance creating a bill)',
      run: () => client(env.app, ten.keys.finance).post('/v1/bills', billInput()),
      status: 403,
      code: 'FEEGATE_ERR_FORBIDDEN_ROLE',
    },
    {
      name: 'wrong role (integration refunding)',
      run: () => api.post(`/v1/payments/${paid.payment.id}/refunds`, {}),
      status: 403,
      code: 'FEEGATE_ERR_FORBIDDEN_ROLE',
    },
    {
      name: 'bad idempotency key',
      run: () => api.post('/v1/bills', billInput(), { 'idempotency-key': 'a b' }),
      status: 400,
      code: 'FEEGATE_ERR_IDEMPOTENCY_KEY_INVALID',
    },
    { name: 'bad cursor', run: () => api.get('/v1/bills?cursor=bm9wZQ'), status: 400, code: 'FEEGATE_ERR_CURSOR_INVALID' },
    { name: 'limit out of range', run: () => api.get('/v1/bills?limit=500'), status: 400, code: 'FEEGATE_ERR_VALIDATION' },
    { name: 'unknown route', run: () => api.get('/v1/nothing-here'), status: 404, code: 'FEEGATE_ERR_NOT_FOUND' },
    // Each of these was a 500 (or was stored) before the shared safe-string formats, cursor checks and bigint sum.
    {
      name: '100 items of 10^15 (the sum leaves the safe integers)',
      run: () => api.post('/v1/bills', billInput({ items: Array.from({ length: 100 }, (_, i) => ({ fee_code: `F${i}`, name: 'Fee', amount: 1e15 })) })),
      status: 400,
      code: 'FEEGATE_ERR_AMOUNT_INVALID',
    },
    { name: 'NUL in a description', run: () => api.post('/v1/bills', billInput({ description: 'a\u0000b' })), status: 400, code: 'FEEGATE_ERR_TEXT_INVALID' },
    {
      name: 'lone surrogate in a payer name',
      run: () => api.post('/v1/bills', billInput({ payer: { name: 'B\ud800' } })),
      status: 400,
      code: 'FEEGATE_ERR_TEXT_INVALID',
    },
    {
      name: 'lone surrogate in a metadata value',
      run: () => api.post('/v1/bills', billInput({ metadata: { a: '\udfff' } })),
      status: 400,
      code: 'FEEGATE_ERR_TEXT_INVALID',
    },
    {
      name: 'escape sequence in an item name',
      run: () => api.post('/v1/bills', billInput({ items: [{ fee_code: 'F', name: '\u001b[2J', amount: 1000 }] })),
      status: 400,
      code: 'FEEGATE_ERR_TEXT_INVALID',
    },
    {
      name: 'payer name of spaces only',
      run: () => api.post('/v1/bills', billInput({ payer: { name: '   ' } })),
      status: 400,
      code: 'FEEGATE_ERR_TEXT_INVALID',
    },
    {
      name: 'item name of zero-width characters only',
      run: () => api.post('/v1/bills', billInput({ items: [{ fee_code: 'F', name: '\u200b\u200d', amount: 1000 }] })),
      status: 400,
      code: 'FEEGATE_ERR_TEXT_INVALID',
    },
    { name: 'empty metadata key', run: () => api.post('/v1/bills', billInput({ metadata: { '': 'v' } })), status: 400, code: 'FEEGATE_ERR_VALIDATION' },
    {
      name: '41-character metadata key',
      run: () => api.post('/v1/bills', billInput({ metadata: { ['k'.repeat(41)]: 'v' } })),
      status: 400,
      code: 'FEEGATE_ERR_VALIDATION',
    },
    { name: 'due_date 0000-01-01', run: () => api.post('/v1/bills', billInput({ due_date: '0000-01-01' })), status: 400, code: 'FEEGATE_ERR_DATE_INVALID' },
    { name: 'due_date in year 10000', run: () => api.post('/v1/bills', billInput({ due_date: '10000-01-01' })), status: 400, code: 'FEEGATE_ERR_DATE_INVALID' },
    {
      name: 'NUL in an API key label',
      run: () => client(env.app, ten.keys.admin).post('/v1/api-keys', { role: 'integration', label: '\u0000' }),
      status: 400,
      code: 'FEEGATE_ERR_TEXT_INVALID',
    },
    {
      name: 'NUL in a refund reason',
      run: () => client(env.app, ten.keys.finance).post(`/v1/payments/${paid.payment.id}/refunds`, { amount: 1, reason: 'x\u0000' }),
      status: 400,
      code: 'FEEGATE_ERR_TEXT_INVALID',
    },
    { name: 'NUL in a query filter', run: () => api.get('/v1/bills?student_code=%00'), status: 400, code: 'FEEGATE_ERR_TEXT_INVALID' },
    {
      name: 'cursor with a non-UUID id',
      run: () => api.get(`/v1/bills?cursor=${cursor({ t: '2026-03-10T02:00:00.000Z', id: 'x' })}`),
      status: 400,
      code: 'FEEGATE_ERR_CURSOR_INVALID',
    },
    {
      name: 'cursor with a numeric time',
      run: () => api.get(`/v1/payments?cursor=${cursor({ t: 0, id: open.id })}`),
      status: 400,
      code: 'FEEGATE_ERR_CURSOR_INVALID',
    },
    {
      name: 'cursor with a time PostgreSQL cannot hold',
      run: () => api.get(`/v1/bills?cursor=${cursor({ t: '-271821-04-20T00:00:00.000Z', id: open.id })}`),
      status: 400,
      code: 'FEEGATE_ERR_CURSOR_INVALID',
    },
    { name: 'path parameter above maxParamLength', run: () => api.get(`/v1/bills/${'a'.repeat(101)}`), status: 400, code: 'FEEGATE_ERR_URL_INVALID' },
    { name: 'undecodable path', run: () => api.get('/v1/bills/%E0%A4%A'), status: 400, code: 'FEEGATE_ERR_URL_INVALID' },
  ];
  const before = await snapshot(db);
  for (const c of cases) {
    const res = await c.run();
    t.equal(res.status, c.status, `${c.name}: HTTP ${c.status}`);
    t.equal(res.body?.error?.code, c.code, `${c.name}: ${c.code}`);
    t.type(res.body?.error?.message, 'string', `${c.name}: has a message`);
  }
  t.same(await snapshot(db), before, 'nothing was written by any of them');

  // An idempotency key reused with other parameters: 422, and the first result stands.
  const first = await api.post('/v1/bills', billInput({ external_ref: 'K-1' }), { 'idempotency-key': 'key-reuse-1' });
  t.equal(first.status, 201);
  const snap = await snapshot(db);
  const reused = await api.post('/v1/bills', billInput({ external_ref: 'K-2' }), { 'idempotency-key': 'key-reuse-1' });
  t.equal(reused.status, 422);
  t.equal(reused.body.error.code, 'FEEGATE_ERR_IDEMPOTENCY_KEY_REUSED');
  t.same(await snapshot(db), snap, 'the reuse wrote nothing');
});
