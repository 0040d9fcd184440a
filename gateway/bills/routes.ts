/** /v1/bills: thin HTTP over gateway/bills/bills.ts. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { principal } from '../http/auth.js';
import { Amount, ListOf, SafeDate, SafeLine, SafeMap, SafeName, SafeText, listQuery, Uuid, errorResponses } from '../http/schemas.js';
import { paginate } from '../http/pagination.js';
import { billJson, cancelBill, createBill, getBill, loadItems, type BillRow } from './bills.js';

/** A code or a name: one line with a visible character. Free text (min 0) may be empty or span lines. */
const Name = (max: number) => SafeName({ maxLength: max });
const Text = (max: number) => SafeText({ minLength: 0, maxLength: max });

const BillItemInput = Type.Object(
  {
    fee_code: Name(50),
    name: Name(500),
    amount: Amount,
    legal_basis: Type.Optional(Text(1000)),
  },
  { additionalProperties: false },
);

const Payer = Type.Object(
  {
    name: Name(200),
    id_number: Type.Optional(Type.String({ pattern: '^[0-9A-Za-z]{6,20}$', description: 'CCCD/CMND or passport number' })),
    phone: Type.Optional(Type.String({ pattern: '^\\+?[0-9]{8,15}$' })),
    email: Type.Optional(Type.String({ format: 'email', maxLength: 254 })),
  },
  { additionalProperties: false },
);

export const BillCreate = Type.Object(
  {
    external_ref: SafeName({ maxLength: 100, description: 'Your reference; unique per tenant. Retrying with the same content returns the same bill.' }),
    kind: Type.Union([Type.Literal('procedure_fee'), Type.Literal('tuition'), Type.Literal('charge')]),
    dossier_code: Type.Optional(Name(100)),
    procedure_code: Type.Optional(Name(100)),
    student_code: Type.Optional(Name(50)),
    school_year: Type.Optional(Type.String({ pattern: '^[0-9]{4}-[0-9]{4}$', description: 'e.g. 2026-2027' })),
    term: Type.Optional(Name(20)),
    description: Type.Optional(Text(1000)),
    payer: Payer,
    items: Type.Array(BillItemInput, { minItems: 1, maxItems: 100 }),
    total_amount: Type.Optional(Amount),
    due_date: Type.Optional(SafeDate()),
    allow_partial: Type.Optional(Type.Boolean()),
    metadata: Type.Optional(SafeMap({ maxKey: 40, maxValue: 500, maxProperties: 20, description: 'Up to 20 keys of 1 to 40 characters, values up to 500' })),
  },
  { additionalProperties: false },
);

export const Bill = Type.Object(
  {
    id: Uuid,
    object: Type.Literal('bill'),
    external_ref: Type.String(),
    kind: Type.String(),
    dossier_code: Type.Union([Type.String(), Type.Null()]),
    procedure_code: Type.Union([Type.String(), Type.Null()]),
    student_code: Type.Union([Type.String(), Type.Null()]),
    school_year: Type.Union([Type.String(), Type.Null()]),
    term: Type.Union([Type.String(), Type.Null()]),
    description: Type.String(),
    // The answer's own shape (the serializer knows none of the input formats).
    payer: Type.Object({
      name: Type.String(),
      id_number: Type.Optional(Type.String()),
      phone: Type.Optional(Type.String()),
      email: Type.Optional(Type.String()),
    }),
    items: Type.Array(Type.Object({ fee_code: Type.String(), name: Type.String(), amount: Type.Integer(), legal_basis: Type.String() })),
    currency: Type.Literal('VND'),
    total_amount: Type.Integer(),
    amount_paid: Type.Integer(),
    amount_due: Type.Integer(),
    allow_partial: Type.Boolean(),
    due_date: Type.Union([Type.String(), Type.Null()]),
    status: Type.String({ description: 'open | partially_paid | paid | cancelled | expired' }),
    metadata: Type.Record(Type.String(), Type.String()),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Bill' },
);

const BillList = ListOf(Bill);

export const billRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, clock, config } = app.deps;
  const writers = ['integration', 'admin'] as const;

  app.post(
    '/v1/bills',
    {
      config: { roles: writers, idempotent: true },
      schema: {
        tags: ['bills'],
        summary: 'Create a bill',
        body: BillCreate,
        response: { 200: Bill, 201: Bill, ...errorResponses },
      },
    },
    async (req, reply) => {
      const result = await createBill(db, clock, principal(req), req.body, req.idem, config.idempotencyLockSeconds);
      return reply.code(result.status).send(result.bill);
    },
  );

  app.get(
    '/v1/bills',
    {
      schema: {
        tags: ['bills'],
        summary: 'List bills, newest first',
        querystring: listQuery({
          status: Type.Optional(Type.String({ pattern: '^(open|partially_paid|paid|cancelled|expired)$' })),
          external_ref: Type.Optional(SafeLine({ maxLength: 100 })),
          student_code: Type.Optional(SafeLine({ maxLength: 50 })),
        }),
        response: { 200: BillList, ...errorResponses },
      },
    },
    async (req) => {
      const q = db('bills').where({ tenant_id: principal(req).tenantId });
      if (req.query.status) q.andWhere({ status: req.query.status });
      if (req.query.external_ref) q.andWhere({ external_ref: req.query.external_ref });
      if (req.query.student_code) q.andWhere({ student_code: req.query.student_code });
      const page = await paginate<BillRow, BillRow>(q.select('bills.*'), { ...req.query, table: 'bills' }, (b) => b);
      const items = await loadItems(
        db,
        page.data.map((b) => b.id),
      );
      return { ...page, data: page.data.map((b) => billJson(b, items.get(b.id) ?? [])) };
    },
  );

  app.get(
    '/v1/bills/:id',
    {
      schema: { tags: ['bills'], summary: 'Retrieve a bill', params: Type.Object({ id: Uuid }), response: { 200: Bill, ...errorResponses } },
    },
    async (req) => getBill(db, principal(req).tenantId, req.params.id),
  );

  app.post(
    '/v1/bills/:id/cancel',
    {
      config: { roles: writers, idempotent: true },
      schema: {
        tags: ['bills'],
        summary: 'Cancel an open bill with no payment in progress',
        params: Type.Object({ id: Uuid }),
        response: { 200: Bill, ...errorResponses },
      },
    },
    async (req) => cancelBill(db, clock, principal(req), req.params.id, req.idem, config.idempotencyLockSeconds),
  );
};
