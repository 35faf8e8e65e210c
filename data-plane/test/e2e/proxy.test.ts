import { createHash } from 'node:crypto';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { rawExchange, statusOf } from '../support/raw-tls.js';
import { buildStream, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';

const shape = (events: number, bodyBytes = 0) => ({ events, bodyBytes, usage: true, promptTokens: 9 });

let mock: MockUpstream;
let gw: InProcessGateway;
let key: string;

beforeAll(async () => {
  mock = await startMockUpstream({ events: 20 });
  gw = await startInProcessGateway({ upstreams: mock.url, env: { MAX_BODY_BYTES: '65536' } });
  // Enterprise: these tests are about the pump and its faults, not the free tier's token limit.
  key = (await gw.issueKey(undefined, 'enterprise')).secret;
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(`${gw.url}${path}`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

describe('proxy over TLS', () => {
  it('answers liveness without credentials', async () => {
    const res = await request(`${gw.url}/healthz`, { dispatcher: gw.dispatcher });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ status: 'ok' });
  });

  it('relays a non-streaming chat completion unchanged, with tier and request id', async () => {
    mock.reset();
    const res = await post('/v1/chat/completions', { model: 'mock-model', messages: [{ role: 'user', content: 'hello' }] });
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-fluxgate-tier']).toBe('enterprise');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const body = (await res.body.json()) as { object: string; usage: { prompt_tokens: number } };
    expect(body.object).toBe('chat.completion');
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it('never forwards the client credential and keeps method and query', async () => {
    mock.reset();
    // Raw bytes: HTTP clients rewrite Connection themselves, and this test is about that header.
    const answer = await rawExchange(
      gw.publicPort,
      `GET /v1/models?limit=5&after=x HTTP/1.1\r\nHost: localhost\r\nx-api-key: ${key}\r\nCookie: a=b\r\nConnection: keep-alive, x-drop-me\r\nx-drop-me: 1\r\nTE: trailers\r\n\r\n`,
      { idleMs: 500 },
    );
    expect(statusOf(answer)).toBe(200);
    const seen = mock.requests.at(-1)!;
    expect(seen.method).toBe('GET');
    expect(seen.query).toBe('limit=5&after=x');
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['x-api-key']).toBeUndefined();
    expect(seen.headers.cookie).toBeUndefined();
    expect(seen.headers['x-drop-me']).toBeUndefined();
    expect(seen.headers.te).toBeUndefined();
    expect(JSON.stringify(seen.headers)).not.toContain(key);
  });

  it('streams SSE and strips the usage event it injected', async () => {
    mock.reset();
    const res = await post('/v1/chat/completions', { model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'count' }] });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/event-stream');
    const text = await res.body.text();
    const upstreamBody = JSON.parse(mock.requests.at(-1)!.body.toString()) as { stream_options?: { include_usage?: boolean } };
    expect(upstreamBody.stream_options?.include_usage).toBe(true);
    // Exactly what the upstream sent, minus the one usage-only event the gateway asked for.
    const sent = buildStream('openai-chat', 'mock-model', shape(20), true).events;
    const expected = Buffer.concat(sent.filter((e) => !e.includes('"choices":[]'))).toString();
    expect(sent.length - 1).toBe(text.split('\n\n').filter(Boolean).length);
    expect(text).toBe(expected);
  });

  it('keeps the usage event when the client asked for it', async () => {
    const res = await post('/v1/chat/completions', {
      model: 'mock-model',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'x' }],
    });
    const text = await res.body.text();
    expect(text).toMatch(/"usage":\{"prompt_tokens":\d+/);
  });

  it('streams Ollama NDJSON from /api/chat', async () => {
    const res = await post('/api/chat', { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.statusCode).toBe(200);
    const lines = (await res.body.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { done: boolean; eval_count?: number });
    expect(lines.at(-1)?.done).toBe(true);
    expect(lines.at(-1)?.eval_count).toBeGreaterThan(0);
  });
});

describe('credentials and bad input', () => {
  it('401 OpenAI-shaped without a key, Ollama-shaped on /api', async () => {
    const a = await request(`${gw.url}/v1/models`, { dispatcher: gw.dispatcher });
    expect(a.statusCode).toBe(401);
    expect(await a.body.json()).toEqual({ error: { message: expect.any(String), type: 'invalid_request_error', code: 'missing_api_key' } });
    const b = await request(`${gw.url}/api/tags`, { dispatcher: gw.dispatcher, headers: { authorization: 'Bearer fgk_nope' } });
    expect(b.statusCode).toBe(401);
    expect(await b.body.json()).toEqual({ error: expect.stringMatching(/invalid api key/i) });
  });

  it('400 for malformed JSON, 413 for a body over the limit, in OpenAI shape', async () => {
    const bad = await post('/v1/chat/completions', '{"model": "x", ');
    expect(bad.statusCode).toBe(400);
    expect(((await bad.body.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
    const big = await post('/v1/chat/completions', { model: 'x', messages: [{ role: 'user', content: 'a'.repeat(70_000) }] });
    expect(big.statusCode).toBe(413);
    expect(((await big.body.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  it('404 for unknown paths', async () => {
    const res = await request(`${gw.url}/nope`, { dispatcher: gw.dispatcher });
    expect(res.statusCode).toBe(404);
    await res.body.text();
  });

  it('a 20 MB stream read by a slow client arrives byte-exact through the whole proxy', async () => {
    mock.set({ bodyBytes: 20 * 1024 * 1024, events: 4 });
    try {
      const res = await post('/v1/chat/completions', {
        model: 'mock-model',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'big' }],
      });
      const expected = Buffer.concat(buildStream('openai-chat', 'mock-model', shape(4, 20 * 1024 * 1024), true).events);
      const clientHash = createHash('sha256');
      let received = 0;
      for await (const chunk of res.body) {
        clientHash.update(chunk as Buffer);
        received += (chunk as Buffer).byteLength;
        // Read slowly for the first megabytes so the gateway has to hold back the upstream.
        if (received < 4 * 1024 * 1024) await new Promise((r) => setTimeout(r, 1));
      }
      expect(received).toBe(expected.byteLength);
      expect(clientHash.digest('hex')).toBe(createHash('sha256').update(expected).digest('hex'));
    } finally {
      mock.reset();
    }
  });
});
