/** What the routes, services and jobs share: built once in app.ts, passed down explicitly. */
import type { Db } from './db/knex.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { ProviderRegistry } from '../adapters/registry.js';
import type { ApiKeyResolver } from './tenants/api-keys.js';
import type { Metrics } from './http/metrics.js';
import type { SecretBox } from './secrets/secret-box.js';
import type { OutboxHandler } from './outbox/outbox.js';
import type { CertStore } from '../certs/store.js';
import type { ProviderCredentials } from './provider-credentials/store.js';
import type { Outbound } from './outbound.js';

export interface Deps {
  db: Db;
  clock: Clock;
  config: Config;
  providers: ProviderRegistry;
  keys: ApiKeyResolver;
  metrics: Metrics;
  secrets: SecretBox;
  /** Signing certificates (and the dev CA in development). */
  certs: CertStore;
  /** Each unit's own provider credentials (sealed at rest). */
  providerCredentials: ProviderCredentials;
  /** Outbound HTTP clients and the URL policies they enforce (webhooks use outbound.webhooks). */
  outbound: Outbound;
  /** Outbox handlers by kind. */
  handlers: Map<string, OutboxHandler>;
}
