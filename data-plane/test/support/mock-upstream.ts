/**
 * A model server double speaking the real wire formats (DESIGN §2: test doubles only for the far
 * side of a network boundary, and they must speak the real protocol).
 *
 * OpenAI: POST /v1/chat/completions and /v1/completions (SSE `data: {...}\n\n` … `data: [DONE]`;
 * with `stream_options.include_usage` every chunk carries `"usage":null` and a last chunk has
 * `choices: []` and the usage, exactly as OpenAI documents), POST /v1/embeddings, GET /v1/models.
 * Ollama: POST /api/chat and /api/generate (NDJSON, streaming unless `stream: false`, counts in
 * the final `done: true` line), GET /api/tags, GET / ("Ollama is running").
 * Any path containing /echo answers with what was received.
 *
 * Faults are set per test with `mock.set({...})`. Event bytes are built once per shape and
 * cached, so the benchmark can use this server without measuring JSON.stringify.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface MockOptions {
  /** Models listed by /v1/models and /api/tags. */
  models: string[];
  /** Content events per streamed response (tokens). */
  events: number;
  /** Delay between streamed events. */
  eventDelayMs: number;
  /** Delay before the status line. */
  headersDelayMs: number;
  /** Destroy the socket after this many content events (mid-stream death). */
  dieAfterEvents: number | null;
  /** Accept requests and never answer. */
  neverAnswer: boolean;
  /** Answer with bytes that are not HTTP. */
  garbage: boolean;
  /** Valid headers, then a broken chunked body. */
  invalidChunked: boolean;
  /** Answer every request with this status and an OpenAI-style error body. */
  status: number | null;
  /** Stream at least this many bytes (adds filler events of ~1 KiB). */
  bodyBytes: number;
  /** Report usage (false mimics servers that never do). */
  usage: boolean;
  promptTokens: number;
  /** Extra headers on every streamed OpenAI answer (a real server sends x-ratelimit-*, x-request-id). */
  headers: Record<string, string>;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Resolves when the exchange's socket side ends; `early` when before the response ended. */
  closed: Promise<{ early: boolean }>;
}

export interface MockStats {
  /** res.write() returned false (the socket's buffer was full: the reader is slow). */
  writesBlocked: number;
  /** Milliseconds spent waiting for 'drain'. */
  blockedMs: number;
  bytesSent: number;
}

export interface MockUpstream {
  url: string;
  port: number;
  requests: RecordedRequest[];
  stats: MockStats;
  /** Requests currently being answered. */
  readonly active: number;
  /** Called for each request as it is recorded; returns an unsubscribe function. */
  onRequest(cb: (r: RecordedRequest) => void): () => void;
  set(opts: Partial<MockOptions>): void;
  reset(): void;
  /** Resolves once `n` requests have been received in total. */
  waitForRequests(n: number): Promise<void>;
  close(): Promise<void>;
}

const DEFAULTS: MockOptions = {
  models: ['mock-model'],
  events: 8,
  eventDelayMs: 0,
  headersDelayMs: 0,
  dieAfterEvents: null,
  neverAnswer: false,
  garbage: false,
  invalidChunked: false,
  status: null,
  bodyBytes: 0,
  usage: true,
  headers: {},
  promptTokens: 9,
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startMockUpstream(initial: Partial<MockOptions> = {}): Promise<MockUpstream> {
  let opts: MockOptions = { ...DEFAULTS, ...initial };
  const requests: RecordedRequest[] = [];
  const stats: MockStats = { writesBlocked: 0, blockedMs: 0, bytesSent: 0 };
  const sockets = new Set<Socket>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const listeners = new Set<(r: RecordedRequest) => void>();
  let active = 0;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const closed = new Promise<{ early: boolean }>((resolve) => {
        res.once('close', () => resolve({ early: !res.writableFinished }));
      });
      const rec: RecordedRequest = {
        method: req.method ?? '',
        path: q === -1 ? url : url.slice(0, q),
        query: q === -1 ? '' : url.slice(q + 1),
        headers: req.headers,
        body: Buffer.concat(chunks),
        closed,
      };
      requests.push(rec);
      for (const l of listeners) l(rec);
      for (const w of waiters.filter((w) => requests.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      active++;
      res.once('close', () => active--);
      answer(req, res, rec, opts, stats).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    stats,
    get active() {
      return active;
    },
    onRequest(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    set(o) {
      opts = { ...opts, ...o };
    },
    reset() {
      opts = { ...DEFAULTS, ...initial };
      requests.length = 0;
      Object.assign(stats, { writesBlocked: 0, blockedMs: 0, bytesSent: 0 });
    },
    waitForRequests(n) {
      if (requests.length >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function answer(req: IncomingMessage, res: ServerResponse, rec: RecordedRequest, o: MockOptions, stats: MockStats): Promise<void> {
  if (o.neverAnswer) return;
  if (o.headersDelayMs > 0) await sleep(o.headersDelayMs);
  const socket = res.socket;
  if (socket === null || socket.destroyed) return;
  if (o.garbage) {
    socket.end('SSH-2.0-OpenSSH_9.6\r\nthis is not HTTP at all\r\n\r\n');
    return;
  }
  if (o.invalidChunked) {
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n');
    socket.end('e\r\ndata: {"a":1}\n\n\r\nzz-not-a-size\r\n\r\n');
    return;
  }
  if (o.status !== null) {
    const body = JSON.stringify({ error: { message: `mock status ${o.status}`, type: 'server_error', code: null } });
    res.writeHead(o.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    return;
  }
  const json = parseJson(rec.body);
  const model = typeof json?.['model'] === 'string' ? json['model'] : (o.models[0] ?? 'mock-model');
  const path = rec.path;

  if (req.method === 'GET' && path === '/') return sendText(res, 200, 'text/plain; charset=utf-8', 'Ollama is running');
  if (req.method === 'GET' && path === '/v1/models') return sendText(res, 200, 'application/json', modelsJson(o.models));
  if (req.method === 'GET' && path === '/api/tags') return sendText(res, 200, 'application/json; charset=utf-8', tagsJson(o.models));
  if (path.includes('/echo')) return echo(res, rec);
  if (req.method !== 'POST') return sendText(res, 404, 'text/plain', '404 page not found');
  if (json === null) {
    return sendText(
      res,
      400,
      'application/json',
      JSON.stringify({
        error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', code: null },
      }),
    );
  }

  const so = json['stream_options'];
  const includeUsage = o.usage && typeof so === 'object' && so !== null && (so as Record<string, unknown>)['include_usage'] === true;
  const kindFor: Record<string, StreamKind | undefined> = {
    '/v1/chat/completions': 'openai-chat',
    '/v1/completions': 'openai-completion',
    '/api/chat': 'ollama-chat',
    '/api/generate': 'ollama-generate',
  };
  const kind = kindFor[path];
  if (path === '/v1/embeddings') return sendText(res, 200, 'application/json', embeddingsJson(model, json['input'], o));
  if (kind === undefined)
    return sendText(
      res,
      404,
      'application/json',
      JSON.stringify({ error: { message: `Unknown path ${path}`, type: 'invalid_request_error' } }),
    );
  const ollama = kind.startsWith('ollama');
  const stream = ollama ? json['stream'] !== false : json['stream'] === true;
  if (!stream) {
    const body =
      kind === 'openai-chat' ? chatJson(model, o) : kind === 'openai-completion' ? completionJson(model, o) : ollamaJson(kind, model, o);
    return sendText(res, 200, ollama ? 'application/json; charset=utf-8' : 'application/json', body);
  }

  const s = buildStream(kind, model, o, includeUsage);
  res.writeHead(
    200,
    ollama
      ? { 'content-type': 'application/x-ndjson', date: new Date().toUTCString() }
      : { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': 'req_mock', ...o.headers },
  );
  // Headers go out before the first event, as a real server flushes them.
  res.flushHeaders();
  const die = o.dieAfterEvents;
  if (o.eventDelayMs === 0 && die === null) {
    for (const batch of s.batches) await write(res, batch, stats);
  } else {
    let sent = 0;
    for (const ev of s.events) {
      if (die !== null && sent >= die) {
        // Dies after the bytes already written have reached the kernel, like a crashed server.
        await new Promise<void>((r) => (res.writableNeedDrain ? res.once('drain', r) : setImmediate(r)));
        res.socket?.destroy();
        return;
      }
      if (o.eventDelayMs > 0 && sent > 0) await sleep(o.eventDelayMs);
      if (res.destroyed) return;
      await write(res, ev, stats);
      sent++;
    }
  }
  res.end();
}

/** Writes and honours backpressure, as a real server's stream does. */
async function write(res: ServerResponse, bytes: Buffer, stats: MockStats): Promise<void> {
  stats.bytesSent += bytes.length;
  if (res.write(bytes)) return;
  stats.writesBlocked++;
  const t = performance.now();
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
  stats.blockedMs += performance.now() - t;
}

function sendText(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) }).end(body);
}

/** Echo with hop-by-hop and cookie headers that a proxy must not pass on. */
function echo(res: ServerResponse, rec: RecordedRequest): void {
  const body = JSON.stringify({ method: rec.method, path: rec.path, query: rec.query, headers: rec.headers, bodyLength: rec.body.length });
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    connection: 'keep-alive, x-hop-named',
    'keep-alive': 'timeout=30',
    'x-hop-named': 'must-not-pass',
    'set-cookie': ['upstream=1; Path=/', 'other=2'],
    'proxy-authenticate': 'Basic',
    'x-upstream-header': 'passes',
  });
  res.end(body);
}

function parseJson(body: Buffer): Record<string, unknown> | null {
  if (body.length === 0) return null;
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

// ---- Wire formats -------------------------------------------------------------------------

type StreamKind = 'openai-chat' | 'openai-completion' | 'ollama-chat' | 'ollama-generate';
type Shape = Pick<MockOptions, 'events' | 'bodyBytes' | 'usage' | 'promptTokens'>;

const VOCAB = ['Hello', ',', ' world', '!', ' This', ' is', ' a', ' mock', ' stream', '.'];
const FILLER = ' lorem'.repeat(170);
const CREATED = 1_700_000_000;
const CREATED_AT = '2024-01-01T00:00:00.000000000Z';
const BATCH_BYTES = 64 * 1024;

/** The completion's tokens: `events` words, plus ~1 KiB fillers until `bodyBytes` is reached. */
function tokens(o: Shape): string[] {
  const out: string[] = [];
  for (let i = 0; i < o.events; i++) out.push(VOCAB[i % VOCAB.length] as string);
  for (let bytes = o.events * 150; bytes < o.bodyBytes; bytes += FILLER.length + 150) out.push(FILLER);
  return out;
}

function openaiUsage(o: Shape, completion: number): Record<string, unknown> {
  return {
    prompt_tokens: o.promptTokens,
    completion_tokens: completion,
    total_tokens: o.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

function ollamaCounts(o: Shape, completion: number): Record<string, unknown> {
  if (!o.usage) return { total_duration: 1_000_000 };
  return {
    total_duration: 1_000_000,
    load_duration: 1000,
    prompt_eval_count: o.promptTokens,
    prompt_eval_duration: 1000,
    eval_count: completion,
    eval_duration: 1000,
  };
}

export interface BuiltStream {
  events: Buffer[];
  /** The same bytes grouped into writes of up to 64 KiB. */
  batches: Buffer[];
}

const streams = new Map<string, BuiltStream>();

export function buildStream(kind: StreamKind, model: string, o: Shape, includeUsage: boolean): BuiltStream {
  const key = `${kind}|${model}|${o.events}|${o.bodyBytes}|${o.usage}|${o.promptTokens}|${includeUsage}`;
  const hit = streams.get(key);
  if (hit !== undefined) return hit;
  const toks = tokens(o);
  const json: Array<Record<string, unknown>> = [];
  if (kind === 'openai-chat' || kind === 'openai-completion') {
    const chat = kind === 'openai-chat';
    const base = chat
      ? { id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: CREATED, model, system_fingerprint: 'fp_mock' }
      : { id: 'cmpl-mock', object: 'text_completion', created: CREATED, model, system_fingerprint: 'fp_mock' };
    const u = includeUsage ? { usage: null } : {};
    const choice = (delta: Record<string, unknown> | string, finish: string | null): Record<string, unknown> =>
      chat ? { index: 0, delta, logprobs: null, finish_reason: finish } : { text: delta, index: 0, logprobs: null, finish_reason: finish };
    if (chat) json.push({ ...base, choices: [choice({ role: 'assistant', content: '', refusal: null }, null)], ...u });
    for (const t of toks) json.push({ ...base, choices: [choice(chat ? { content: t } : t, null)], ...u });
    json.push({ ...base, choices: [choice(chat ? {} : '', 'stop')], ...u });
    if (includeUsage) json.push({ ...base, choices: [], usage: openaiUsage(o, toks.length) });
  } else {
    const chat = kind === 'ollama-chat';
    const text = (t: string): Record<string, unknown> => (chat ? { message: { role: 'assistant', content: t } } : { response: t });
    for (const t of toks) json.push({ model, created_at: CREATED_AT, ...text(t), done: false });
    json.push({
      model,
      created_at: CREATED_AT,
      ...text(''),
      done_reason: 'stop',
      done: true,
      ...(chat ? {} : { context: [1, 2, 3] }),
      ...ollamaCounts(o, toks.length),
    });
  }
  const sse = kind.startsWith('openai');
  const events = json.map((j) => Buffer.from(sse ? `data: ${JSON.stringify(j)}\n\n` : `${JSON.stringify(j)}\n`));
  if (sse) events.push(Buffer.from('data: [DONE]\n\n'));
  const batches: Buffer[] = [];
  let pending: Buffer[] = [];
  let size = 0;
  for (const e of events) {
    if (size + e.length > BATCH_BYTES && pending.length > 0) {
      batches.push(Buffer.concat(pending));
      pending = [];
      size = 0;
    }
    pending.push(e);
    size += e.length;
  }
  if (pending.length > 0) batches.push(Buffer.concat(pending));
  const built = { events, batches };
  streams.set(key, built);
  return built;
}

export function chatJson(model: string, o: Shape): string {
  const toks = tokens(o);
  return JSON.stringify({
    id: 'chatcmpl-mock',
    object: 'chat.completion',
    created: CREATED,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: toks.join(''), refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    ...(o.usage ? { usage: openaiUsage(o, toks.length) } : {}),
    service_tier: 'default',
    system_fingerprint: 'fp_mock',
  });
}

export function completionJson(model: string, o: Shape): string {
  const toks = tokens(o);
  return JSON.stringify({
    id: 'cmpl-mock',
    object: 'text_completion',
    created: CREATED,
    model,
    system_fingerprint: 'fp_mock',
    choices: [{ text: toks.join(''), index: 0, logprobs: null, finish_reason: 'stop' }],
    ...(o.usage ? { usage: openaiUsage(o, toks.length) } : {}),
  });
}

export function ollamaJson(kind: StreamKind, model: string, o: Shape): string {
  const toks = tokens(o);
  const text = kind === 'ollama-chat' ? { message: { role: 'assistant', content: toks.join('') } } : { response: toks.join('') };
  return JSON.stringify({ model, created_at: CREATED_AT, ...text, done_reason: 'stop', done: true, ...ollamaCounts(o, toks.length) });
}

/** Embeddings: 8 dimensions per input, or enough to reach `bodyBytes`. */
export function embeddingsJson(model: string, input: unknown, o: Shape): string {
  const inputs = Array.isArray(input) ? input : [input];
  const dims = Math.max(8, Math.ceil(o.bodyBytes / 20 / inputs.length));
  const vector = Array.from({ length: dims }, (_, i) => Math.round(Math.sin(i) * 1e6) / 1e6);
  return JSON.stringify({
    object: 'list',
    data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: vector })),
    model,
    ...(o.usage ? { usage: { prompt_tokens: o.promptTokens, total_tokens: o.promptTokens } } : {}),
  });
}

export function modelsJson(models: readonly string[]): string {
  return JSON.stringify({ object: 'list', data: models.map((id) => ({ id, object: 'model', created: CREATED, owned_by: 'mock' })) });
}

export function tagsJson(models: readonly string[]): string {
  return JSON.stringify({
    models: models.map((name) => ({
      name,
      model: name,
      modified_at: CREATED_AT,
      size: 1_000_000,
      digest: 'sha256:mock',
      details: {
        parent_model: '',
        format: 'gguf',
        family: 'llama',
        families: ['llama'],
        parameter_size: '1B',
        quantization_level: 'Q4_K_M',
      },
    })),
  });
}
