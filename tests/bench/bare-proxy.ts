/**
 * The floor for the chat bench: the least a Node gateway can do between an OpenAI client and an
 * Ollama server. node:http in, node:http out (keep-alive), each NDJSON read passed on as one SSE
 * event, usage at the end. No authentication, redaction, storage, audit or retries. The chat
 * bench runs it as a process of its own, as `cynode serve` runs, and prints it beside the
 * gateway: what the hop itself costs on this machine, and so how much of the gateway's cost is
 * its pipeline.
 *
 * `node --import tsx tests/bench/bare-proxy.ts <ollama url>`; prints `listening <url>`.
 */
import http from 'node:http';

const upstream = process.argv[2];
if (!upstream) throw new Error('usage: bare-proxy.ts <ollama url>');
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model: string; messages: unknown[] };
    const call = http.request(`${upstream}/api/chat`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (answer) => {
      answer.setEncoding('utf8');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let rest = '';
      answer.on('data', (data: string) => {
        const lines = (rest + data).split('\n');
        rest = lines.pop()!;
        let content = '';
        let usage = '';
        for (const line of lines) {
          const m = JSON.parse(line) as { message?: { content?: string }; done?: boolean; eval_count?: number };
          content += m.message?.content ?? '';
          if (m.done) usage = `data: ${JSON.stringify({ choices: [], usage: { completion_tokens: m.eval_count } })}\n\n`;
        }
        const events = (content ? `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n` : '') + usage;
        if (events) res.write(events);
      });
      answer.on('end', () => res.end('data: [DONE]\n\n'));
    });
    call.setNoDelay(true);
    call.end(JSON.stringify({ model: body.model, messages: body.messages, stream: true }));
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`listening http://127.0.0.1:${port}`);
});
