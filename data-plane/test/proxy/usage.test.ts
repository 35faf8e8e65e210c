import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createUpstreamPool, type ManagedUpstreamPool } from '../../src/proxy/pool.js';
import { inspectRequestBody } from '../../src/proxy/request-body.js';
import { parseUpstreamUrls } from '../../src/proxy/upstreams.js';
import { createUsageTracker, type UsageResult, type UsageTracker } from '../../src/proxy/usage.js';
import { buildStream, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';

interface Relayed {
  client: Buffer;
  usage: UsageResult;
  upstreamChunks: number;
}

/** What a route does: inspect the body, forward, pass each chunk through a usage tracker. */
function relay(pool: ManagedUpstreamPool, path: string, payload: Record<string, unknown>): Promise<Relayed> {
  const inspected = inspectRequestBody({ path, contentType: 'application/json', body: Buffer.from(JSON.stringify(payload)) });
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let tracker: UsageTracker | null = null;
    let upstreamChunks = 0;
    pool.forward(
      {
        method: 'POST',
        path,
        query: '',
        headers: new Map([['content-type', 'application/json']]),
        body: inspected.body,
        model: inspected.model,
        signal: new AbortController().signal,
      },
      {
        onResponseStart(_status, headers) {
          const contentType = headers.find(([n]) => n === 'content-type')?.[1] ?? null;
          tracker = createUsageTracker({
            contentType,
            promptText: inspected.promptText,
            stripInjectedUsage: inspected.injectedIncludeUsage,
          });
        },
        onData(chunk) {
          upstreamChunks++;
          // The tracker's output may be a view of the chunk: copy, as a sink would.
          parts.push(Buffer.from(tracker?.push(chunk) ?? chunk));
          return true;
        },
        onComplete() {
          parts.push(Buffer.from(tracker?.end() ?? []));
          resolve({
            client: Buffer.concat(parts),
            usage: tracker?.result() ?? { promptTokens: -1, completionTokens: -1, estimated: true },
            upstreamChunks,
          });
        },
        onError: reject,
      },
    );
  });
}

describe('usage through the pool', () => {
  let mock: MockUpstream;
  let pool: ManagedUpstreamPool;
  const shape = { events: 8, bodyBytes: 0, usage: true, promptTokens: 9 };
  const chat = { model: 'mock-model', messages: [{ role: 'user', content: 'Say hello' }] };

  beforeAll(async () => {
    mock = await startMockUpstream();
    pool = createUpstreamPool(parseUpstreamUrls(mock.url), { probe: false });
  });
  afterAll(async () => {
    await pool.close();
    await mock.close();
  });
  beforeEach(() => mock.reset());

  it('include_usage is injected upstream and its event stripped: client bytes = upstream bytes minus that event', async () => {
    mock.set({ eventDelayMs: 2 });
    const r = await relay(pool, '/v1/chat/completions', { ...chat, stream: true });
    expect(JSON.parse(mock.requests[0]?.body.toString() ?? '{}').stream_options).toEqual({ include_usage: true });
    const upstream = buildStream('openai-chat', 'mock-model', shape, true).events;
    const usageEvents = upstream.filter((e) => e.includes('"choices":[]'));
    expect(usageEvents).toHaveLength(1);
    const expected = Buffer.concat(upstream.filter((e) => !usageEvents.includes(e)));
    expect(r.upstreamChunks).toBeGreaterThan(5);
    expect(r.client.toString()).toBe(expected.toString());
    expect(r.usage).toEqual({ promptTokens: 9, completionTokens: 8, estimated: false });
  });

  it('a client that asked for usage gets the usage event untouched', async () => {
    const r = await relay(pool, '/v1/chat/completions', { ...chat, stream: true, stream_options: { include_usage: true } });
    expect(r.client.equals(Buffer.concat(buildStream('openai-chat', 'mock-model', shape, true).events))).toBe(true);
    expect(r.usage.estimated).toBe(false);
  });

  it('completions stream, Ollama NDJSON and non-streamed JSON report the upstream counts', async () => {
    const c = await relay(pool, '/v1/completions', { model: 'mock-model', prompt: 'Once', stream: true });
    expect(
      c.client.equals(
        Buffer.concat(buildStream('openai-completion', 'mock-model', shape, true).events.filter((e) => !e.includes('"choices":[]'))),
      ),
    ).toBe(true);
    expect(c.usage).toEqual({ promptTokens: 9, completionTokens: 8, estimated: false });
    const o = await relay(pool, '/api/generate', { model: 'llama3.2', prompt: 'Why is the sky blue?' });
    expect(o.usage).toEqual({ promptTokens: 9, completionTokens: 8, estimated: false });
    const j = await relay(pool, '/v1/chat/completions', chat);
    expect(j.usage).toEqual({ promptTokens: 9, completionTokens: 8, estimated: false });
    const e = await relay(pool, '/v1/embeddings', { model: 'emb', input: ['a', 'b'] });
    expect(e.usage).toEqual({ promptTokens: 9, completionTokens: 0, estimated: false });
  });

  it('an upstream that reports no usage: estimated from prompt and response text bytes', async () => {
    mock.set({ usage: false });
    const sse = await relay(pool, '/v1/chat/completions', { ...chat, stream: true });
    // "Say hello" = 9 bytes → 3; "Hello, world! This is a mock" = 28 bytes → 7.
    expect(sse.usage).toEqual({ promptTokens: 3, completionTokens: 7, estimated: true });
    const nd = await relay(pool, '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'Say hello' }] });
    expect(nd.usage).toEqual({ promptTokens: 3, completionTokens: 7, estimated: true });
  });
});
