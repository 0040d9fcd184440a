/** /v1/signing_certs (read-only: certificates are imported with the CLI) and the expiry gauge. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Deps } from '../gateway/deps.js';
import { principal } from '../gateway/http/auth.js';
import { ListOf, Uuid, errorResponses } from '../gateway/http/schemas.js';
import { certJson } from './store.js';

const Cert = Type.Object({
  id: Uuid,
  object: Type.Literal('signing_cert'),
  status: Type.String(),
  source: Type.String(),
  subject: Type.String(),
  issuer: Type.String(),
  serial: Type.String(),
  tax_code: Type.Union([Type.String(), Type.Null()]),
  fingerprint_sha256: Type.String(),
  not_before: Type.String({ format: 'date-time' }),
  not_after: Type.String({ format: 'date-time' }),
  days_left: Type.Integer(),
  expiring_soon: Type.Boolean(),
  created_at: Type.String({ format: 'date-time' }),
});

export const certRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { db, clock, config, certs } = app.deps;
  app.get(
    '/v1/signing_certs',
    {
      config: { roles: ['finance', 'admin'] },
      schema: {
        tags: ['receipts'],
        summary: 'Signing certificates of the unit (active first); private keys are never returned',
        response: { 200: ListOf(Cert), ...errorResponses },
      },
    },
    async (req) => {
      const rows = await certs.list(db, principal(req).tenantId);
      rows.sort((a, b) => (a.status === b.status ? 0 : a.status === 'active' ? -1 : 1));
      return { object: 'list' as const, data: rows.map((r) => certJson(r, clock.now(), config.certWarnDays)), has_more: false, next_cursor: null };
    },
  );
};

/** Fills feegate_signing_cert_days_left at each scrape, from the active certificates. */
export function watchCertificates(deps: Deps): void {
  deps.metrics.onScrape(async () => {
    const rows = (await deps
      .db('signing_certs')
      .join('tenants', 'tenants.id', 'signing_certs.tenant_id')
      .where('signing_certs.status', 'active')
      .select('tenants.code', 'signing_certs.serial', 'signing_certs.not_after')) as { code: string; serial: string; not_after: Date }[];
    deps.metrics.certDaysLeft.reset();
    for (const r of rows) {
      const days = Math.floor((new Date(r.not_after).getTime() - deps.clock.now().getTime()) / 86400_000);
      deps.metrics.certDaysLeft.set({ tenant: r.code, serial: r.serial, expiring_soon: String(days <= deps.config.certWarnDays) }, days);
    }
  });
}
