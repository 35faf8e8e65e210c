/**
 * An Ollama stand-in speaking Ollama's HTTP API as the real server does: POST /api/chat answers
 * one JSON object when the request says `"stream": false`, else NDJSON chunks ending with
 * `"done": true`; GET /api/tags lists the model. Behaviour is switchable per test: a normal
 * answer, a slow one, garbage content, or an HTTP error in Ollama's `{"error": …}` shape.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type StandInMode = 'ok' | 'slow' | 'garbage' | 'error';

export interface OllamaStandIn {
  url: string;
  port: number;
  mode: StandInMode;
  /** Content of normal answers. */
  answer: string;
  slowMs: number;
  requests: Array<{ path: string; body: { model?: string; stream?: boolean; messages?: Array<{ role: string; content: string }> } }>;
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
  /** Listens again on the same port (after close: "Ollama comes back"). */
  reopen(): Promise<void>;
}

const read = async (req: IncomingMessage): Promise<string> => {
  let s = '';
  for await (const c of req) s += c;
  return s;
};

export async function startOllamaStandIn(port = 0): Promise<OllamaStandIn> {
  let server: Server;
  const s: OllamaStandIn = {
    url: '',
    port,
    mode: 'ok',
    answer: 'The key sent many very large prompts far beyond its tier and was moved to penalty level one for fifteen minutes.',
    slowMs: 3000,
    requests: [],
    inFlight: 0,
    maxInFlight: 0,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
    reopen: async () => listen(),
  };
  const listen = async (): Promise<void> => {
    server = createServer(async (req, res) => {
      const path = (req.url ?? '').split('?')[0]!;
      const text = await read(req);
      if (req.method === 'GET' && path === '/api/tags') {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        return res.end(JSON.stringify({ models: [{ name: 'llama3.2:1b', model: 'llama3.2:1b', size: 1, digest: 'x', details: {} }] }));
      }
      if (req.method !== 'POST' || path !== '/api/chat') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return res.end('404 page not found');
      }
      const body = JSON.parse(text) as OllamaStandIn['requests'][number]['body'];
      s.requests.push({ path, body });
      s.inFlight++;
      s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
      try {
        if (s.mode === 'slow') await new Promise((r) => setTimeout(r, s.slowMs));
        if (res.destroyed) return;
        if (s.mode === 'error') {
          res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
          return res.end(JSON.stringify({ error: 'model runner has unexpectedly stopped' }));
        }
        const content = s.mode === 'garbage' ? '```json\n{"ok":' : s.answer;
        const created_at = new Date().toISOString();
        const final = {
          model: body.model,
          created_at,
          message: { role: 'assistant', content: body.stream === false ? content : '' },
          done_reason: 'stop',
          done: true,
          total_duration: 1_000_000,
          load_duration: 1000,
          prompt_eval_count: 42,
          prompt_eval_duration: 1000,
          eval_count: 17,
          eval_duration: 1000,
        };
        if (body.stream === false) {
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
          return res.end(JSON.stringify(final));
        }
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        for (const word of content.split(/(?<= )/))
          res.write(`${JSON.stringify({ model: body.model, created_at, message: { role: 'assistant', content: word }, done: false })}\n`);
        res.end(`${JSON.stringify(final)}\n`);
      } finally {
        s.inFlight--;
      }
    });
    await new Promise<void>((resolve) => server.listen(s.port, '127.0.0.1', resolve));
    s.port = (server.address() as AddressInfo).port;
    s.url = `http://127.0.0.1:${s.port}`;
  };
  await listen();
  return s;
}
