/** What the routes, services and jobs share: built once in app.ts, passed down explicitly. */
import type { Db } from './db/knex.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { ProviderRegistry } from '../adapters/registry.js';
import type { ApiKeyResolver } from './tenants/api-keys.js';
import type { Metrics } from './http/metrics.js';

export interface Deps {
  db: Db;
  clock: Clock;
  config: Config;
  providers: ProviderRegistry;
  keys: ApiKeyResolver;
  metrics: Metrics;
}
