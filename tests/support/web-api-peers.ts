import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the web APIs connectors talk to, speaking the subset of Mattermost,
 * Discord, Slack and GitHub that the drivers use, plus a few generic routes for the http type.
 * Every request is recorded as it arrived (headers included) so tests can check exactly what
 * reached the peer.
 *
 * Generic routes: `/echo/**` answers what it got; `/status/{code}` answers that status;
 * `/big?bytes=N` sends N bytes; `/slow?ms=N` answers after N ms; `/html` sends HTML; `/redirect`
 * points at a metadata address.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface Tokens {
  mattermost: string;
  discord: string;
  slack: string;
  github: string;
}

export interface WebApiPeers {
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** The next request gets this status (and headers) instead of its normal answer. */
  failNext(status: number, headers?: Record<string, string>): void;
  stop(): Promise<void>;
}

interface Stored {
  id: string;
  text: string;
  at: number;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8', ...headers });
  res.end(text);
}

export async function startWebApiPeers(tokens: Tokens): Promise<WebApiPeers> {
  const requests: RecordedRequest[] = [];
  const channels = new Map<string, Stored[]>();
  let failure: { status: number; headers: Record<string, string> } | null = null;
  let seq = 1000;
  const history = (key: string): Stored[] => {
    let list = channels.get(key);
    if (!list) channels.set(key, (list = []));
    return list;
  };
  const post = (key: string, text: string): Stored => {
    const item = { id: String(++seq), text, at: Date.UTC(2026, 11, 5, 6, 0, 0) + seq * 1000 };
    history(key).push(item);
    return item;
  };
  const newestFirst = (key: string, limit: number): Stored[] => [...history(key)].reverse().slice(0, limit);

  const handle = (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest): void => {
    const { method, path } = rec;
    const json = (): Record<string, unknown> => (rec.body ? (JSON.parse(rec.body) as Record<string, unknown>) : {});
    const auth = req.headers.authorization ?? '';
    let m: RegExpMatchArray | null;

    if (failure) {
      const f = failure;
      failure = null;
      return send(res, f.status, { message: 'failure chosen by the test' }, f.headers);
    }

    // Generic routes for the http type.
    if (path.startsWith('/echo')) return send(res, 200, { method, path, query: rec.query, body: rec.body });
    if ((m = path.match(/^\/status\/(\d{3})$/))) return send(res, Number(m[1]), { message: `status ${m[1]}` });
    if (path === '/big') return send(res, 200, 'x'.repeat(Number(rec.query.bytes ?? 0)));
    if (path === '/slow') return void setTimeout(() => send(res, 200, { slow: true }), Number(rec.query.ms ?? 1000)).unref();
    if (path === '/html') {
      res.writeHead(200, { 'content-type': 'text/html', 'set-cookie': 'session=abc' });
      return void res.end('<p>Hello <b>web</b></p>');
    }
    if (path === '/redirect') {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      return void res.end();
    }

    // Mattermost API v4: bearer token.
    if (path.startsWith('/api/v4/')) {
      if (auth !== `Bearer ${tokens.mattermost}`) return send(res, 401, { id: 'api.context.session_expired.app_error', status_code: 401 });
      if (method === 'GET' && path === '/api/v4/users/me') return send(res, 200, { id: 'botuser', username: 'cynode' });
      if (method === 'POST' && path === '/api/v4/posts') {
        const body = json();
        const p = post(`mm:${String(body.channel_id)}`, String(body.message));
        return send(res, 201, { id: `p${p.id}`, channel_id: body.channel_id, message: p.text, create_at: p.at, user_id: 'botuser' });
      }
      if (method === 'GET' && (m = path.match(/^\/api\/v4\/channels\/([^/]+)\/posts$/))) {
        const list = newestFirst(`mm:${m[1]}`, Number(rec.query.per_page ?? 60));
        return send(res, 200, {
          order: list.map((p) => `p${p.id}`),
          posts: Object.fromEntries(list.map((p) => [`p${p.id}`, { id: `p${p.id}`, message: p.text, create_at: p.at, user_id: 'botuser' }])),
        });
      }
    }

    // Discord API v10: `Bot` token.
    if (path.startsWith('/api/v10/')) {
      if (auth !== `Bot ${tokens.discord}`) return send(res, 401, { message: '401: Unauthorized', code: 0 });
      if (method === 'GET' && path === '/api/v10/users/@me') return send(res, 200, { id: '1', username: 'cynode-bot', bot: true });
      if ((m = path.match(/^\/api\/v10\/channels\/(\d+)\/messages$/))) {
        if (method === 'POST') {
          const p = post(`dc:${m[1]}`, String(json().content));
          return send(res, 200, { id: p.id, channel_id: m[1], content: p.text, timestamp: new Date(p.at).toISOString(), author: { id: '1', username: 'cynode-bot' } });
        }
        const list = newestFirst(`dc:${m[1]}`, Number(rec.query.limit ?? 50));
        return send(res, 200, list.map((p) => ({ id: p.id, channel_id: m![1], content: p.text, timestamp: new Date(p.at).toISOString(), author: { id: '1', username: 'cynode-bot' } })));
      }
    }

    // Slack Web API: bearer token; failures are HTTP 200 with ok: false.
    if (path.startsWith('/api/')) {
      if (auth !== `Bearer ${tokens.slack}`) return send(res, 200, { ok: false, error: 'invalid_auth' });
      if (path === '/api/auth.test') return send(res, 200, { ok: true, team: 'T1', user: 'cynode' });
      if (method === 'POST' && path === '/api/chat.postMessage') {
        const body = json();
        if (body.channel === 'C_MISSING') return send(res, 200, { ok: false, error: 'channel_not_found' });
        if (body.channel === 'C_LIMIT') return send(res, 200, { ok: false, error: 'ratelimited' });
        const p = post(`sl:${String(body.channel)}`, String(body.text));
        return send(res, 200, { ok: true, channel: body.channel, ts: `${Math.floor(p.at / 1000)}.${p.id.padStart(6, '0')}`, message: { text: p.text } });
      }
      if (method === 'GET' && path === '/api/conversations.history') {
        const list = newestFirst(`sl:${rec.query.channel}`, Number(rec.query.limit ?? 100));
        return send(res, 200, { ok: true, messages: list.map((p) => ({ ts: `${Math.floor(p.at / 1000)}.${p.id.padStart(6, '0')}`, user: 'U1', text: p.text })), has_more: false });
      }
    }

    // GitHub REST: bearer token, JSON media type, API version header.
    if (path.startsWith('/repos/')) {
      if (auth !== `Bearer ${tokens.github}`) return send(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      if ((m = path.match(/^\/repos\/([^/]+)\/([^/]+)$/)) && method === 'GET') return send(res, 200, { full_name: `${m[1]}/${m[2]}` });
      if ((m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/issues$/)) && method === 'POST') {
        const body = json();
        if (!body.title) return send(res, 422, { message: 'Validation Failed' });
        const p = post(`gh:${m[1]}/${m[2]}`, String(body.title));
        const number = history(`gh:${m[1]}/${m[2]}`).length;
        return send(res, 201, { id: Number(p.id), number, title: body.title, html_url: `https://github.com/${m[1]}/${m[2]}/issues/${number}` });
      }
      if ((m = path.match(/^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/)) && method === 'POST') {
        const p = post(`gh:${m[1]}/${m[2]}#${m[3]}`, String(json().body));
        return send(res, 201, { id: Number(p.id), body: p.text, html_url: `https://github.com/${m[1]}/${m[2]}/issues/${m[3]}#issuecomment-${p.id}` });
      }
    }

    send(res, 404, { message: 'Not Found' });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://peer');
      const rec: RecordedRequest = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: { ...req.headers },
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(rec);
      try {
        handle(req, res, rec);
      } catch {
        send(res, 400, { message: 'Problems parsing JSON' });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    failNext(status, headers = {}) {
      failure = { status, headers };
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
