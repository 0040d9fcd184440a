/**
 * Rate limits for public routes (no API key: the receipt verifier, the receipt lookup page and its
 * download). Their bucket is per client address and much tighter than an API key's, and it is
 * checked in onRequest, before the body is read or parsed: a refused stranger costs a map lookup.
 * The client address is req.ip, which honours TRUST_PROXY (config.ts) behind a reverse proxy.
 * IPv6 clients are counted per /64 (one subscriber's whole prefix), IPv4-mapped IPv6 as IPv4.
 */
import type { FastifyRequest } from 'fastify';
import ipaddr from 'ipaddr.js';

export function clientKey(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  let addr = ipaddr.parse(ip);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  if (addr.kind() === 'ipv4') return addr.toString();
  return `${(addr as ipaddr.IPv6).parts
    .slice(0, 4)
    .map((p) => p.toString(16))
    .join(':')}::/64`;
}

/** Route config `rateLimit` for a public route: `max` requests a minute per client address. */
export function publicRateLimit(max: number) {
  return {
    max,
    timeWindow: 60_000,
    hook: 'onRequest' as const,
    keyGenerator: (req: FastifyRequest) => `public:${clientKey(req.ip)}`,
  };
}
