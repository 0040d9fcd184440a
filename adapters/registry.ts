/**
 * Which providers this gateway runs, and the context each adapter call gets. Credentials come
 * from a resolver so that per-tenant, encrypted-at-rest credentials plug in without touching
 * adapters or routes.
 */
import type { Clock } from '../gateway/clock.js';
import type { AdapterContext, PaymentAdapter } from './contract.js';
import type { HttpClient } from './http-client.js';

export type CredentialResolver = (provider: string, tenantId: string | null) => Promise<Record<string, string>>;

export class ProviderRegistry {
  private readonly adapters = new Map<string, PaymentAdapter>();
  constructor(private readonly deps: { http: HttpClient; clock: Clock; publicUrl: string; credentials: CredentialResolver }) {}

  /** The HTTP client for calls to providers (gateway/outbound.ts: guarded; webhooks have their own). */
  get http(): HttpClient {
    return this.deps.http;
  }

  register(adapter: PaymentAdapter): void {
    this.adapters.set(adapter.id, adapter);
  }

  get(id: string): PaymentAdapter | undefined {
    return this.adapters.get(id);
  }

  list(): PaymentAdapter[] {
    return [...this.adapters.values()];
  }

  async context(provider: string, tenantId: string | null): Promise<AdapterContext> {
    return {
      http: this.deps.http,
      clock: this.deps.clock,
      publicUrl: this.deps.publicUrl,
      credentials: await this.deps.credentials(provider, tenantId),
    };
  }
}
