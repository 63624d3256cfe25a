import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { ConnectorError } from './types/contract';

/**
 * The outbound guard every connector connection goes through. A connector's destination is
 * chosen by users, so without it a connector could reach the machine's own services or the
 * local network. Names are resolved first and each address is checked; the connection is then
 * made to the checked address itself, so a name cannot answer differently between the check
 * and the connect (DNS rebinding).
 *
 * Only globally routable unicast addresses pass by default: loopback, link-local, private,
 * unique-local, unspecified, multicast, carrier-grade NAT, documentation and the IPv6 forms that
 * embed an IPv4 address (6to4, Teredo, NAT64) are refused unless the allow list names the host
 * or a CIDR containing the address.
 */

type Address = ipaddr.IPv4 | ipaddr.IPv6;

export interface AllowList {
  /** Exact host names, lower case, without a trailing dot. */
  hosts: ReadonlySet<string>;
  /** `.example.com` for an entry `*.example.com`: any subdomain. */
  suffixes: readonly string[];
  cidrs: readonly [Address, number][];
}

export const EMPTY_ALLOW_LIST: AllowList = { hosts: new Set(), suffixes: [], cidrs: [] };

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * Parses a comma-separated allow list (`CYNODE_CONNECTOR_ALLOW`): host names, `*.domain`
 * wildcards, addresses and CIDRs. An entry that is none of these is an error naming it, so a
 * typo does not silently leave a destination blocked or open.
 */
export function parseAllowList(text: string | undefined): AllowList {
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  const cidrs: [Address, number][] = [];
  for (const raw of (text ?? '').split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry.includes('/')) {
      try {
        const [address, bits] = ipaddr.parseCIDR(entry);
        const v4 = normalise(address);
        // A v4-mapped network (::ffff:10.0.0.0/104) is kept as the IPv4 network it names.
        cidrs.push(v4 !== address && bits >= 96 ? [v4, bits - 96] : [address, bits]);
        continue;
      } catch {
        throw new Error(`connector allow list: "${entry}" is not a valid CIDR`);
      }
    }
    const literal = parseAddress(entry);
    if (literal) {
      cidrs.push([literal, literal.kind() === 'ipv4' ? 32 : 128]);
      continue;
    }
    const name = entry.replace(/\.$/, '');
    if (name.startsWith('*.') && HOST_NAME.test(name.slice(2))) {
      suffixes.push(name.slice(1));
      continue;
    }
    if (HOST_NAME.test(name)) {
      hosts.add(name);
      continue;
    }
    throw new Error(`connector allow list: "${entry}" is neither a host name, an address nor a CIDR`);
  }
  return { hosts, suffixes, cidrs };
}

/** IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry. */
function normalise(address: Address): Address {
  return address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address() : address;
}

function parseAddress(text: string): Address | null {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // Only the canonical forms: "0x7f.1" or "2130706433" would be read as loopback by some
  // resolvers while looking like a name here.
  if (!ipaddr.IPv4.isValidFourPartDecimal(bare) && !(bare.includes(':') && ipaddr.IPv6.isValid(bare))) return null;
  return normalise(ipaddr.parse(bare));
}

export interface ResolvedTarget {
  /** The name as given (for TLS server name and the Host header). */
  host: string;
  /** The checked address to connect to. */
  address: string;
  family: 4 | 6;
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

export class EgressGuard {
  private readonly allow: AllowList;
  private readonly resolver: Resolver;

  constructor(options: { allow?: AllowList; resolver?: Resolver } = {}) {
    this.allow = options.allow ?? EMPTY_ALLOW_LIST;
    this.resolver = options.resolver ?? systemResolver;
  }

  /** Whether a connection to `address` (reached through the name `host`) may be made. */
  permits(host: string, address: string): boolean {
    const name = host.toLowerCase().replace(/\.$/, '');
    if (this.allow.hosts.has(name) || this.allow.suffixes.some((s) => name.endsWith(s))) return true;
    const parsed = parseAddress(address);
    if (!parsed) return false;
    if (parsed.range() === 'unicast') return true;
    return this.allow.cidrs.some(([net, bits]) => net.kind() === parsed.kind() && parsed.match(net, bits));
  }

  /**
   * Resolves `host` and returns the first address that may be reached, or refuses with a
   * policy_denied failure when none may.
   */
  async resolve(host: string): Promise<ResolvedTarget> {
    const name = (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host).toLowerCase();
    if (!name) throw new ConnectorError('validation_error', 'The connector has no host to connect to');
    const literal = parseAddress(name);
    let candidates: { address: string; family: number }[];
    if (literal) {
      candidates = [{ address: literal.toString(), family: literal.kind() === 'ipv4' ? 4 : 6 }];
    } else if (ipaddr.isValid(name) || !HOST_NAME.test(name.replace(/\.$/, ''))) {
      // An address in a non-canonical form, or something that is no host name at all.
      throw new ConnectorError('validation_error', `"${host}" is not a valid host name`);
    } else {
      candidates = await this.lookup(name);
    }
    for (const c of candidates) {
      const parsed = parseAddress(c.address);
      if (parsed && this.permits(name, c.address)) {
        return { host: name, address: parsed.toString(), family: parsed.kind() === 'ipv4' ? 4 : 6 };
      }
    }
    throw new ConnectorError(
      'policy_denied',
      `Connections to ${host} are not allowed: it is a local or private address. An administrator can allow it.`,
    );
  }

  private async lookup(name: string): Promise<{ address: string; family: number }[]> {
    try {
      const found = await this.resolver(name);
      if (found.length === 0) throw Object.assign(new Error('no address'), { code: 'ENOTFOUND' });
      return found;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') {
        throw new ConnectorError('permanent', `The host name ${name} does not resolve`);
      }
      throw new ConnectorError('transient', `The host name ${name} could not be resolved right now`);
    }
  }
}

/**
 * A `lookup` for node:net, node:tls and node:http that answers only with an address already
 * checked, so the socket connects exactly there while TLS still verifies the host name.
 */
export function pinnedLookup(target: ResolvedTarget): LookupFunction {
  return (_hostname, options, callback) => {
    if (options.all) {
      (callback as (err: null, addresses: { address: string; family: number }[]) => void)(null, [
        { address: target.address, family: target.family },
      ]);
    } else {
      callback(null, target.address, target.family);
    }
  };
}

/** The installation's guard: `CYNODE_CONNECTOR_ALLOW` lists the extra hosts and networks. */
export function egressFromEnvironment(env: NodeJS.ProcessEnv = process.env): EgressGuard {
  return new EgressGuard({ allow: parseAllowList(env.CYNODE_CONNECTOR_ALLOW) });
}
