/**
 * The outbound URL guard (SSRF). Every URL the gateway calls on someone else's say (a unit's
 * provider `endpoint`/`api_url`, a merchant's webhook) passes two checks:
 * - checkUrl, at registration and again before each call: http(s) only (https only outside sandbox
 *   mode), no credentials in the URL, no spaces/controls/backslashes, an IP literal only in its plain
 *   dotted-decimal (or bracketed IPv6) form and only a public one, no `localhost` names;
 * - guardedLookup, at connection time: the name is resolved, EVERY address is checked, and the socket
 *   connects to the checked address (the lookup is the agent's), so a name that resolved to a public
 *   address at registration and to 127.0.0.1 now (DNS rebinding) is refused.
 * "Public" is ipaddr.js's `unicast` range (for IPv6 also inside 2000::/3); everything else is refused:
 * loopback, private, link-local (cloud metadata), CGNAT, multicast, unspecified, reserved,
 * IPv4-mapped/translated IPv6, 6to4, Teredo...
 * An operator may allow named private hosts (FEEGATE_ALLOWED_PRIVATE_HOSTS): a host name (whatever
 * it resolves to), an IP address or a CIDR range. A policy may exempt the gateway's own simulators
 * (sandbox mode only: their provider-facing routes, never their control API; gateway/outbound.ts).
 */
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { HttpNetworkError, nodeHttpClient, type HttpClient } from './http-client.js';

type Ip = ipaddr.IPv4 | ipaddr.IPv6;

/** Resolves a host name to all its addresses (dns.lookup: the system resolver, /etc/hosts included). */
export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;
export const systemResolver: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

export interface UrlPolicy {
  /** http:// too (sandbox mode); https only otherwise. */
  allowHttp: boolean;
  /** Host names, IP addresses or CIDR ranges allowed although not public (the operator's list). */
  allowedPrivateHosts: readonly string[];
  /** URLs exempt from the host and address checks: the gateway's own simulators, in sandbox mode only. */
  exempt?: (url: URL) => boolean;
  /** Host names refused whatever they resolve to: the gateway's own (nothing we call is ourselves). */
  refusedHosts?: readonly string[];
  /** The resolver (tests give one that answers what a rebinding DNS server would). */
  resolve?: Resolver;
}

/** A URL or address the guard refuses. A network error to adapters (nothing was sent), a 4xx at registration. */
export class UrlRefusedError extends HttpNetworkError {
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super(host, new Error(reason));
    this.name = 'UrlRefusedError';
    this.message = `refused to call ${host || 'this URL'}: ${reason}`;
  }
}

const MAX_URL_LENGTH = 2048;
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

const RANGE_WORDS: Record<string, string> = {
  unspecified: 'the unspecified address',
  broadcast: 'the broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address (cloud metadata lives there)',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT address (100.64.0.0/10)',
  private: 'a private address',
  uniqueLocal: 'a unique-local (private) IPv6 address',
  ipv4Mapped: 'an IPv4-mapped IPv6 address',
  rfc6145: 'an IPv4-translated IPv6 address',
  rfc6052: 'a NAT64 address',
  '6to4': 'a 6to4 address',
  teredo: 'a Teredo address',
};

interface AllowList {
  names: Set<string>;
  ranges: [Ip, number][];
}

/** Why an allow-list entry is not usable, or null. */
export function allowListEntryProblem(entry: string): string | null {
  const e = entry
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (ipaddr.isValidCIDR(e)) {
    return ipaddr.IPv6.isValidCIDR(e) || ipaddr.IPv4.isValidCIDRFourPartDecimal(e) ? null : `"${entry}" is not a dotted-decimal CIDR range`;
  }
  if (ipaddr.isValid(e)) return ipaddr.IPv6.isValid(e) || ipaddr.IPv4.isValidFourPartDecimal(e) ? null : `"${entry}" is not a dotted-decimal address`;
  return HOST_NAME.test(e.replace(/\.$/, '')) ? null : `"${entry}" is not a host name, an IP address or a CIDR range`;
}

const compiled = new WeakMap<readonly string[], AllowList>();
function allowList(entries: readonly string[]): AllowList {
  let list = compiled.get(entries);
  if (list) return list;
  list = { names: new Set(), ranges: [] };
  for (const raw of entries) {
    const problem = allowListEntryProblem(raw);
    if (problem) throw new Error(`FEEGATE_ALLOWED_PRIVATE_HOSTS: ${problem}`);
    const e = raw
      .trim()
      .toLowerCase()
      .replace(/^\[(.*)\]$/, '$1');
    if (ipaddr.isValidCIDR(e)) list.ranges.push(ipaddr.parseCIDR(e));
    else if (ipaddr.isValid(e)) {
      const ip = ipaddr.parse(e);
      list.ranges.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
    } else list.names.add(e.replace(/\.$/, ''));
  }
  compiled.set(entries, list);
  return list;
}

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/** Throws UrlRefusedError unless the address is public or the operator allowed it. */
export function checkAddress(address: string, policy: UrlPolicy, host = address): void {
  let ip: Ip;
  try {
    ip = ipaddr.parse(address);
  } catch {
    throw new UrlRefusedError(host, `"${address}" is not an IP address`);
  }
  const allowed = allowList(policy.allowedPrivateHosts);
  if (allowed.ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return;
  const range = ip.range();
  if (range !== 'unicast') throw new UrlRefusedError(host, `${ip.toString()} is ${RANGE_WORDS[range] ?? `a special-purpose address (${range})`}`);
  if (ip.kind() === 'ipv6' && !ip.match(GLOBAL_UNICAST_V6)) throw new UrlRefusedError(host, `${ip.toString()} is outside IPv6 global unicast (2000::/3)`);
}

export interface CheckedUrl {
  /** The parsed, normalised URL: the one to call. */
  url: URL;
  /** The policy exempts it (the gateway's own simulators): no host or address checks. */
  exempt: boolean;
}

/** `user@host:port` as written in a `scheme://` URL. */
function authorityOf(raw: string): string {
  return raw.slice(raw.indexOf('//') + 2).split(/[/?#]/, 1)[0]!;
}

/** The host as written in the URL (before the WHATWG parser turns 0x7f.1 into 127.0.0.1). */
function hostAsWritten(raw: string): string {
  const authority = authorityOf(raw);
  const host = authority.slice(authority.lastIndexOf('@') + 1);
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1).toLowerCase();
  const colon = host.lastIndexOf(':');
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
}

/** Throws UrlRefusedError for a URL the policy refuses; otherwise the URL to call. */
export function checkUrl(raw: string, policy: UrlPolicy): CheckedUrl {
  if (typeof raw !== 'string' || raw.length === 0) throw new UrlRefusedError('', 'no URL');
  if (raw.length > MAX_URL_LENGTH) throw new UrlRefusedError('', `longer than ${MAX_URL_LENGTH} characters`);
  // The parser silently drops tabs and newlines and reads `\` as `/`: a URL that needs them is a trick.
  if (/[\u0000-\u0020\u007f-\u009f\\]/.test(raw)) throw new UrlRefusedError('', 'spaces, control characters and backslashes are refused');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlRefusedError('', 'not an absolute URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw new UrlRefusedError(url.hostname, `${url.protocol.slice(0, -1)} URLs are refused: ${policy.allowHttp ? 'http or https' : 'https'} only`);
  }
  // Only the plain `scheme://authority` form: `https:host` and `https:/host` parse too, to the same URL.
  if (!/^https?:\/\//i.test(raw)) throw new UrlRefusedError('', 'write the URL as http(s)://host/...');
  if (url.username || url.password || authorityOf(raw).includes('@')) {
    throw new UrlRefusedError(url.hostname, 'credentials in URLs are refused');
  }
  if (policy.exempt?.(url)) return { url, exempt: true };

  const hostname = url.hostname;
  const written = hostAsWritten(raw);
  if (hostname.startsWith('[')) {
    checkAddress(hostname.slice(1, -1), policy, hostname);
  } else if (ipaddr.IPv4.isValidFourPartDecimal(hostname)) {
    // The WHATWG parser has already turned 2130706433, 0x7f.0.0.1, 0177.0.0.1 and 127.1 into 127.0.0.1:
    // a literal written any other way than the plain dotted decimal is a disguise.
    if (written !== hostname) throw new UrlRefusedError(written, `"${written}" is an IP address in a decimal, hex, octal or short form`);
    checkAddress(hostname, policy, hostname);
  } else {
    const name = hostname.replace(/\.$/, '');
    if ((policy.refusedHosts ?? []).some((h) => h.toLowerCase().replace(/\.$/, '') === name)) {
      throw new UrlRefusedError(name, 'this is the gateway itself');
    }
    if ((name === 'localhost' || name.endsWith('.localhost')) && !allowList(policy.allowedPrivateHosts).names.has(name)) {
      throw new UrlRefusedError(name, 'localhost is a loopback name');
    }
  }
  return { url, exempt: false };
}

/**
 * The lookup for the agent: resolves the name, refuses it if ANY of its addresses is refused (a
 * round-robin answer mixing a public and a private address is a rebinding attempt), and hands
 * Node the checked addresses, which the socket then connects to. Names the operator allowed skip
 * the address checks.
 */
export function guardedLookup(policy: UrlPolicy): LookupFunction {
  const resolve = policy.resolve ?? systemResolver;
  return (hostname, options, callback) => {
    const name = hostname.toLowerCase().replace(/\.$/, '');
    resolve(hostname)
      .then((found) => {
        if (!allowList(policy.allowedPrivateHosts).names.has(name)) {
          for (const a of found) checkAddress(a.address, policy, name);
        }
        const wanted = options.family === 4 || options.family === 6 ? found.filter((a) => a.family === options.family) : found;
        if (!wanted.length) {
          throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
        }
        if (options.all) callback(null, wanted);
        else callback(null, wanted[0]!.address, wanted[0]!.family);
      })
      .catch((err: NodeJS.ErrnoException) => callback(err, '', 0));
  };
}

/**
 * An HttpClient that checks every URL (checkUrl) before calling it, and connects only to checked
 * addresses (guardedLookup). `transport` replaces the network client (tests); its connections are
 * then only checked statically.
 */
export function guardedHttpClient(policy: UrlPolicy, transport?: HttpClient): HttpClient {
  const guarded = transport ?? nodeHttpClient({ lookup: guardedLookup(policy) });
  // The gateway's own simulators (sandbox mode, an operator-configured URL) resolve to wherever the operator runs them.
  const exempt = transport ?? nodeHttpClient();
  return {
    async request(req) {
      const checked = checkUrl(req.url, policy);
      return (checked.exempt ? exempt : guarded).request({ ...req, url: checked.url.href });
    },
  };
}
