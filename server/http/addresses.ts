import { isIP } from 'node:net';
import { hostname } from 'node:os';

/** An address of this machine's loopback interface: 127.0.0.0/8 or ::1 (IPv4-mapped forms too). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  const v4 = a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
  if (isIP(v4) === 4) return v4.split('.')[0] === '127';
  if (isIP(v4) !== 6) return false;
  // ::1 however it is spelled (0:0:0:0:0:0:0:1, ::0001).
  const groups = v4.split('::');
  if (groups.length > 2) return false;
  const head = groups[0] ? groups[0].split(':') : [];
  const tail = groups.length === 2 && groups[1] ? groups[1].split(':') : [];
  const all = groups.length === 2 ? [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail] : head;
  return all.length === 8 && all.every((g: string, i: number) => parseInt(g, 16) === (i === 7 ? 1 : 0));
}

/** A Host header naming this machine's loopback (a DNS-rebound page names its own host instead). */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  return name.toLowerCase() === 'localhost' || isLoopbackAddress(name);
}

/** The name part of a Host header, lowercased, without port or IPv6 brackets. */
export function hostName(host: string): string {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '');
  return name.toLowerCase();
}

/** An address as a socket reports it: IPv4-mapped IPv6 (`::ffff:10.0.0.2`) as plain IPv4. */
export function plainAddress(address: string | undefined): string {
  const a = (address ?? '').toLowerCase();
  return a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/**
 * Whether a request's Host names this server. A page on another domain that its DNS rebinds to
 * this machine sends its own name, and is refused whatever its Origin. Allowed: loopback names,
 * the address the connection arrived on (a LAN client typing this machine's address), and
 * `names` (this machine's own name, configured ones).
 */
export function hostAllowed(host: string | undefined, localAddress: string | undefined, names: readonly string[]): boolean {
  if (!host) return false;
  const name = hostName(host);
  if (isLoopbackHost(host)) return true;
  if (isIP(name) !== 0 && name === plainAddress(localAddress)) return true;
  return names.includes(name);
}

/** The names this machine goes by on the LAN: its host name, and that name under mDNS (`.local`). */
export function machineNames(): string[] {
  const name = hostname().toLowerCase();
  const bare = name.replace(/\.local$/, '');
  return [...new Set([name, bare, `${bare}.local`])].filter(Boolean);
}

/** The address the orchestrator's own node uses to reach the control plane on this machine. */
export function loopbackOf(host: string): string {
  if (host === '0.0.0.0' || host === '127.0.0.1' || host === 'localhost') return '127.0.0.1';
  if (host === '::' || host === '::1') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** The URL of a listener bound to `host`, as a client on this machine reaches it (a wildcard is loopback). */
export function listenerUrl(port: number, host: string): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${port}`;
}
