/** /v1/payments and refunds: thin HTTP over payments.ts and refunds.ts. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principal } from '../http/auth.js';
import { Amount, ListOf, listQuery, Uuid, errorResponses } from '../http/schemas.js';
import { paginate } from '../http/pagination.js';
import { PAYMENT_STATUSES, paymentJson, refundJson, type PaymentRow, type RefundRow } from './model.js';
import { createPayment, getPayment } from './payments.js';
import { createRefund } from './refunds.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const Payment = Type.Object(
  {
    id: Uuid,
    object: Type.Literal('payment'),
    bill_id: Uuid,
    reference: Type.String({ description: 'Our order reference, as the provider sees it' }),
    provider: Type.String(),
    amount: Type.Integer(),
    amount_refunded: Type.Integer(),
    currency: Type.Literal('VND'),
    status: Type.String({ description: PAYMENT_STATUSES.join(' | ') }),
    provider_transaction_id: Nullable(Type.String()),
    checkout: Nullable(
      Type.Object({
        type: Type.String({ description: 'redirect | qr | deeplink' }),
        url: Type.Optional(Type.String()),
        qr_payload: Type.Optional(Type.String()),
        deeplink: Type.Optional(Type.String()),
      }),
    ),
    return_url: Nullable(Type.String()),
    failure: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
    expires_at: Type.String({ format: 'date-time' }),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
    succeeded_at: Nullable(Type.String({ format: 'date-time' })),
  },
  { $id: 'Payment' },
);

export const Refund = Type.Object(
  {
    id: Uuid,
    object: Type.Literal('refund'),
    payment_id: Uuid,
    reference: Type.String(),
    amount: Type.Integer(),
    status: Type.String({ description: 'pending | succeeded | failed | unknown' }),
    reason: Type.String(),
    provider_refund_id: Nullable(Type.String()),
    failure_message: Nullable(Type.String()),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Refund' },
);

export const paymentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const deps = app.deps;
  const { db } = deps;

  app.post(
    '/v1/payments',
    {
      config: { roles: ['integration', 'admin'], idempotent: true },
      schema: {
        tags: ['payments'],
        summary: 'Start paying a bill with a provider',
        description:
          'Creates the payment, asks the provider for a checkout and returns it (redirect URL, QR payload or deep link). ' +
          'A provider that does not answer leaves the payment `unknown`; it is resolved by querying the provider.',
        body: Type.Object(
          {
            bill_id: Uuid,
            provider: Type.String({ pattern: '^[a-z0-9_]{2,30}$' }),
            amount: Type.Optional(Amount),
            return_url: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://', maxLength: 1000 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Payment, ...errorResponses },
      },
    },
    async (req, reply) => {
      const p = await createPayment(deps, principal(req), req.body, req.idem, req.ip);
      return reply.code(201).send(p);
    },
  );

  app.get(
    '/v1/payments',
    {
      schema: {
        tags: ['payments'],
        summary: 'List payments, newest first',
        querystring: listQuery({
          status: Type.Optional(Type.String({ pattern: `^(${PAYMENT_STATUSES.join('|')})$` })),
          bill_id: Type.Optional(Uuid),
          provider: Type.Optional(Type.String({ maxLength: 30 })),
        }),
        response: { 200: ListOf(Payment), ...errorResponses },
      },
    },
    async (req) => {
      const q = db('payments').where({ tenant_id: principal(req).tenantId });
      if (req.query.status) q.andWhere({ status: req.query.status });
      if (req.query.bill_id) q.andWhere({ bill_id: req.query.bill_id });
      if (req.query.provider) q.andWhere({ provider: req.query.provider });
      return paginate<PaymentRow, ReturnType<typeof paymentJson>>(q, { ...req.query, table: 'payments' }, paymentJson);
    },
  );

  app.get(
    '/v1/payments/:id',
    {
      schema: { tags: ['payments'], summary: 'Retrieve a payment', params: Type.Object({ id: Uuid }), response: { 200: Payment, ...errorResponses } },
    },
    async (req) => paymentJson(await getPayment(deps, principal(req).tenantId, req.params.id)),
  );

  app.post(
    '/v1/payments/:id/refunds',
    {
      config: { roles: ['finance', 'admin'], idempotent: true },
      schema: {
        tags: ['refunds'],
        summary: 'Refund a payment, fully or partly',
        description: 'Without `amount`, refunds everything still refundable. Never more than collected minus refunded.',
        params: Type.Object({ id: Uuid }),
        body: Type.Object({ amount: Type.Optional(Amount), reason: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
        response: { 201: Refund, ...errorResponses },
      },
    },
    async (req, reply) => reply.code(201).send(await createRefund(deps, principal(req), req.params.id, req.body ?? {}, req.idem)),
  );

  app.get(
    '/v1/payments/:id/refunds',
    {
      schema: {
        tags: ['refunds'],
        summary: "List a payment's refunds",
        params: Type.Object({ id: Uuid }),
        response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(Refund) }), ...errorResponses },
      },
    },
    async (req) => {
      const p = await getPayment(deps, principal(req).tenantId, req.params.id);
      const rows = (await db('refunds').where({ payment_id: p.id }).orderBy('created_at')) as RefundRow[];
      return { object: 'list' as const, data: rows.map(refundJson) };
    },
  );
};
