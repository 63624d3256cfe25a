/** Where Ollama listens when nothing says otherwise (its own default). */
export const DEFAULT_OLLAMA_URL = 'http://127.0.0.1:11434';

/**
 * The node's Ollama base URL from OLLAMA_HOST, read the way the Ollama CLI reads it, so one
 * setting serves both: `host:port`, `host`, `:port`, `http(s)://host[:port]`. Without a scheme
 * the port defaults to 11434, with one to the scheme's port. A bind-all address (0.0.0.0, ::)
 * means "this machine" to a client.
 */
export function ollamaBaseUrl(raw: string | undefined): string {
  const value = (raw ?? '').trim();
  if (value === '') return DEFAULT_OLLAMA_URL;
  const schemeAt = value.indexOf('://');
  const scheme = schemeAt >= 0 ? value.slice(0, schemeAt).toLowerCase() : 'http';
  if (scheme !== 'http' && scheme !== 'https') throw new Error(`OLLAMA_HOST must be host[:port] or an http(s) URL (got "${value}")`);
  const defaultPort = schemeAt < 0 ? '11434' : scheme === 'https' ? '443' : '80';
  const rest = schemeAt >= 0 ? value.slice(schemeAt + 3) : value;
  const slash = rest.indexOf('/');
  const hostport = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash).replace(/\/+$/, '') : '';
  let host: string;
  let port: string;
  const bracketed = /^\[([^\]]+)\](?::(\d*))?$/.exec(hostport);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] || defaultPort;
  } else if ((hostport.match(/:/g) ?? []).length === 1) {
    [host, port] = hostport.split(':') as [string, string];
    port ||= defaultPort;
  } else {
    // No port, or a bare IPv6 address.
    host = hostport;
    port = defaultPort;
  }
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) throw new Error(`OLLAMA_HOST has no valid port (got "${value}")`);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let url: URL;
  try {
    url = new URL(`${scheme}://${shownHost}:${port}${path}`);
  } catch {
    throw new Error(`OLLAMA_HOST is not a valid host or URL (got "${value}")`);
  }
  // new URL drops a default port (http:80), which is what we want to show.
  return url.toString().replace(/\/+$/, '');
}
