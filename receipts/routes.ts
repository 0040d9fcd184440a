/**
 * Receipts API: /v1/receipts (list, JSON, the exact signed XML), /v1/receipt_series, and the
 * public side: POST /v1/receipts/verify (anyone may verify a receipt) and the lookup page /r/:code.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { formatNumber } from './templates.js';
import { principal } from '../gateway/http/auth.js';
import { ListOf, Uuid, errorResponses, listQuery } from '../gateway/http/schemas.js';
import { paginate } from '../gateway/http/pagination.js';
import { claimIdempotency, completeIdempotency } from '../gateway/http/idempotency.js';
import { FeegateError, fail, isUniqueViolation } from '../gateway/errors.js';
import { publicRateLimit } from '../gateway/http/public-limits.js';
import { createSeries, receiptJson, seriesJson, type ReceiptRow, type SeriesRow } from './issue.js';
import { MAX_XML_BYTES, type VerificationReport } from './verify.js';
import { BUSY_RETRY_AFTER_SECONDS, verifierPool, type VerifierPool } from './verifier-pool.js';
import { XML_LIMITS } from './xml-limits.js';
import { lookupPage } from './page.js';

const Receipt = Type.Object({
  id: Uuid,
  object: Type.Literal('receipt'),
  kind: Type.String({ description: 'original | adjustment (a refund)' }),
  payment_id: Uuid,
  refund_id: Type.Union([Uuid, Type.Null()]),
  original_receipt_id: Type.Union([Uuid, Type.Null()]),
  template_symbol: Type.String({ description: 'Ký hiệu mẫu biên lai, e.g. 01BLP0-001' }),
  series_symbol: Type.String({ description: 'Ký hiệu biên lai, e.g. AA-26E' }),
  year: Type.Integer(),
  number: Type.String({ description: '7 digits, from 0000001 each calendar year' }),
  amount: Type.Integer(),
  issued_at: Type.String({ format: 'date-time' }),
  signing_time: Type.String({ description: 'Vietnam local time, as signed' }),
  signing_cert_id: Uuid,
  lookup_code: Type.String(),
  lookup_url: Type.String(),
  xml_sha256: Type.String(),
});
const Series = Type.Object({
  id: Uuid,
  object: Type.Literal('receipt_series'),
  doc_type: Type.String(),
  template_symbol: Type.String(),
  series_letters: Type.String(),
  is_default: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
});
const Report = Type.Object({
  valid: Type.Boolean(),
  signature_valid: Type.Boolean(),
  trusted: Type.Boolean(),
  doc_type: Type.Union([Type.String(), Type.Null()]),
  references: Type.Array(Type.Object({ uri: Type.String(), part: Type.String(), valid: Type.Union([Type.Boolean(), Type.Null()]) })),
  tampered: Type.Array(Type.String()),
  signing_time: Type.Union([Type.String(), Type.Null()]),
  signature_algorithm: Type.Union([Type.String(), Type.Null()]),
  signer: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  chain: Type.Array(Type.String()),
  document: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
  signed: Type.Array(Type.String(), { description: 'Paths of the elements the signature covers' }),
  unsigned: Type.Array(Type.String(), { description: 'Paths of content outside what is signed (the receipt is then invalid, VN-BL-008)' }),
  problems: Type.Array(Type.Object({ rule: Type.String(), part: Type.String(), message: Type.String() })),
});

/** The signed bytes exactly as stored, as a download named after the receipt. */
function sendXml(reply: FastifyReply, r: ReceiptRow) {
  return reply
    .type('application/xml; charset=utf-8')
    .header('etag', `"${r.xml_sha256}"`)
    .header('content-disposition', `attachment; filename="bienlai-${r.series_symbol}-${formatNumber(r.number)}.xml"`)
    .send(r.xml);
}

const verifierOf = (app: FastifyInstance) => verifierPool({ threads: app.deps.config.verifyThreads, queue: app.deps.config.verifyQueue });

/** Verifies off the event loop; a full queue is answered 503 with Retry-After (load shed, not an error to log). */
async function verifyOrShed(pool: VerifierPool, reply: FastifyReply, xml: string, anchors: string[]): Promise<VerificationReport | undefined> {
  try {
    return await pool.verify(xml, anchors);
  } catch (err) {
    if (!(err instanceof FeegateError) || err.code !== 'FEEGATE_ERR_VERIFIER_BUSY') throw err;
    await reply.code(err.statusCode).header('retry-after', String(BUSY_RETRY_AFTER_SECONDS)).send(err.toJSON());
    return undefined;
  }
}

export const receiptRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, clock, config, certs } = app.deps;
  const everyone = ['integration', 'finance', 'admin'] as const;
  const toJson = (r: ReceiptRow) => receiptJson(r, config.publicUrl);
  const verifier = verifierOf(app);

  app.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'string', bodyLimit: MAX_XML_BYTES }, (_req, body, done) => done(null, body));

  app.get(
    '/v1/receipts',
    {
      config: { roles: everyone },
      schema: {
        tags: ['receipts'],
        summary: 'List receipts, newest first',
        querystring: listQuery({
          payment_id: Type.Optional(Uuid),
          kind: Type.Optional(Type.Union([Type.Literal('original'), Type.Literal('adjustment')])),
          year: Type.Optional(Type.String({ pattern: '^2[0-9]{3}$' })),
          series_symbol: Type.Optional(Type.String({ maxLength: 20 })),
          number: Type.Optional(Type.String({ pattern: '^[0-9]{1,7}$' })),
        }),
        response: { 200: ListOf(Receipt), ...errorResponses },
      },
    },
    async (req) => {
      const q = db('receipts').where({ tenant_id: principal(req).tenantId });
      const f = req.query;
      if (f.payment_id) q.andWhere({ payment_id: f.payment_id });
      if (f.kind) q.andWhere({ kind: f.kind });
      if (f.year) q.andWhere({ year: Number(f.year) });
      if (f.series_symbol) q.andWhere({ series_symbol: f.series_symbol });
      if (f.number) q.andWhere({ number: Number(f.number) });
      return paginate<ReceiptRow, ReturnType<typeof toJson>>(q, { ...f, table: 'receipts' }, toJson);
    },
  );

  async function own(tenantId: string, id: string): Promise<ReceiptRow> {
    const r = (await db('receipts').where({ id, tenant_id: tenantId }).first()) as ReceiptRow | undefined;
    return r ?? fail('FEEGATE_ERR_RECEIPT_NOT_FOUND');
  }

  app.get(
    '/v1/receipts/:id',
    {
      config: { roles: everyone },
      schema: { tags: ['receipts'], summary: 'A receipt (JSON)', params: Type.Object({ id: Uuid }), response: { 200: Receipt, ...errorResponses } },
    },
    async (req) => toJson(await own(principal(req).tenantId, req.params.id)),
  );

  app.get(
    '/v1/receipts/:id/xml',
    {
      config: { roles: everyone },
      schema: { tags: ['receipts'], summary: 'The signed XML, byte for byte as signed', params: Type.Object({ id: Uuid }), produces: ['application/xml'] },
    },
    async (req, reply) => {
      return sendXml(reply, await own(principal(req).tenantId, req.params.id));
    },
  );

  app.post(
    '/v1/receipts/verify',
    {
      config: { auth: false, rateLimit: publicRateLimit(config.verifyRateLimitPerMinute) },
      bodyLimit: MAX_XML_BYTES,
      schema: {
        tags: ['receipts'],
        summary: 'Verify an XML receipt (public): signature, signer, chain, signing time, what was tampered',
        description:
          'Send the XML as the body with Content-Type: application/xml. DTDs and entities are refused, and so is XML beyond ' +
          `a receipt's shape (FEEGATE_ERR_XML_TOO_COMPLEX: more than ${XML_LIMITS.elements} elements, depth ${XML_LIMITS.depth} or ${XML_LIMITS.attributesPerElement} attributes on an element). ` +
          'Rate limited per client address (VERIFY_RATE_LIMIT_PER_MINUTE); 503 FEEGATE_ERR_VERIFIER_BUSY with Retry-After when the verifier queue is full.',
        security: [],
        body: Type.String({ minLength: 1 }),
        response: { 200: Report, ...errorResponses },
      },
    },
    async (req, reply) => verifyOrShed(verifier, reply, req.body, certs.anchors()),
  );

  app.get(
    '/v1/receipt_series',
    {
      config: { roles: everyone },
      schema: {
        tags: ['receipts'],
        summary: 'Receipt series (template symbol + series letters)',
        querystring: listQuery(),
        response: { 200: ListOf(Series), ...errorResponses },
      },
    },
    async (req) =>
      paginate<SeriesRow, ReturnType<typeof seriesJson>>(
        db('receipt_series').where({ tenant_id: principal(req).tenantId }),
        { ...req.query, table: 'receipt_series' },
        seriesJson,
      ),
  );

  app.post(
    '/v1/receipt_series',
    {
      config: { roles: ['admin'], idempotent: true },
      schema: {
        tags: ['receipts'],
        summary: 'Register a receipt series as announced to the tax authority; the default one numbers new receipts',
        body: Type.Object(
          {
            template_symbol: Type.String({ pattern: '^0[12]BLP[0-9]-[0-9]{3}$', description: 'e.g. 01BLP0-001' }),
            series_letters: Type.String({ pattern: '^[ABCDEGHKLMNPQRSTUVXY]{2}$', description: 'two letters; the symbol becomes AA-26E for 2026' }),
            is_default: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 201: Series, ...errorResponses },
      },
    },
    async (req, reply) => {
      const who = principal(req);
      const out = await db.transaction(async (trx) => {
        await claimIdempotency(trx, clock, req.idem, config.idempotencyLockSeconds);
        let row: SeriesRow;
        try {
          row = await trx.transaction((t) =>
            createSeries(
              t,
              who.tenantId,
              {
                templateSymbol: req.body.template_symbol,
                seriesLetters: req.body.series_letters,
                isDefault: req.body.is_default ?? true,
              },
              clock.now(),
            ),
          );
        } catch (err) {
          if (isUniqueViolation(err)) fail('FEEGATE_ERR_RECEIPT_SERIES_EXISTS');
          throw err;
        }
        await completeIdempotency(trx, clock, req.idem, 201, seriesJson(row));
        return seriesJson(row);
      });
      return reply.code(201).send(out);
    },
  );
};

/** The public lookup page and download, by lookup code (no key: the code is the capability). */
export const receiptPublicRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, config, certs } = app.deps;
  const byCode = async (code: string) => {
    const r = (await db('receipts').where({ lookup_code: code }).first()) as ReceiptRow | undefined;
    return r ?? fail('FEEGATE_ERR_RECEIPT_NOT_FOUND');
  };
  const Code = Type.Object({ code: Type.String({ pattern: '^[A-Z2-9]{12}$' }) });
  const reports = new Map<string, VerificationReport>();
  const verifier = verifierOf(app);
  const limited = { auth: false, rateLimit: publicRateLimit(config.publicRateLimitPerMinute) };
  app.get('/r/:code', { config: limited, schema: { hide: true, params: Code } }, async (req, reply) => {
    const r = await byCode(req.params.code);
    // Stored bytes never change and trust is judged at the signing time: verify once per receipt.
    let report = reports.get(r.id);
    if (!report) {
      report = await verifyOrShed(verifier, reply, r.xml, certs.anchors());
      if (!report) return reply;
      if (reports.size >= 1000) reports.delete(reports.keys().next().value!);
      reports.set(r.id, report);
    }
    return reply.type('text/html; charset=utf-8').send(await lookupPage(r, report, `${config.publicUrl}/r/${r.lookup_code}`));
  });
  app.get('/r/:code/xml', { config: limited, schema: { hide: true, params: Code } }, async (req, reply) => {
    return sendXml(reply, await byCode(req.params.code));
  });
};
