import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createUpstreamPool, type ManagedUpstreamPool } from '../../src/proxy/pool.js';
import { parseUpstreamUrls } from '../../src/proxy/upstreams.js';
import { buildStream, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { chatBody, forward, header } from './helpers.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const shape = { events: 20, bodyBytes: 0, usage: true, promptTokens: 9 };

describe('forwarding streams', () => {
  let mock: MockUpstream;
  let pool: ManagedUpstreamPool;

  beforeAll(async () => {
    mock = await startMockUpstream();
    pool = createUpstreamPool(parseUpstreamUrls(mock.url), { probe: false });
  });
  afterAll(async () => {
    await pool.close();
    await mock.close();
  });
  beforeEach(() => mock.reset());

  it('forwards an OpenAI SSE stream byte for byte', async () => {
    mock.set({ events: 20 });
    const f = forward(pool, { body: chatBody({ stream: true, stream_options: { include_usage: true } }) });
    const out = await f.done;
    const expected = Buffer.concat(buildStream('openai-chat', 'mock-model', shape, true).events);
    expect(out.error).toBeNull();
    expect(out.endings).toBe(1);
    expect(out.status).toBe(200);
    expect(out.upstream).toBe(`127.0.0.1:${mock.port}`);
    expect(header(out.headers, 'content-type')).toEqual(['text/event-stream; charset=utf-8']);
    expect(header(out.headers, 'transfer-encoding')).toEqual([]);
    expect(out.contentLength).toBeNull();
    expect(out.body.equals(expected)).toBe(true);
  });

  it('forwards an Ollama NDJSON stream and a JSON answer byte for byte', async () => {
    const nd = await forward(pool, {
      path: '/api/chat',
      body: Buffer.from('{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}'),
      model: 'llama3.2',
    }).done;
    expect(nd.error).toBeNull();
    expect(header(nd.headers, 'content-type')).toEqual(['application/x-ndjson']);
    expect(nd.body.equals(Buffer.concat(buildStream('ollama-chat', 'llama3.2', { ...shape, events: 8 }, false).events))).toBe(true);

    const js = await forward(pool, { body: chatBody() }).done;
    expect(js.status).toBe(200);
    expect(js.contentLength).toBe(js.body.length);
    expect(header(js.headers, 'content-length')).toEqual([]);
    expect(JSON.parse(js.body.toString()).usage.completion_tokens).toBe(8);
  });

  it('backpressure: while the handler is paused the upstream is held back, then every byte arrives', async () => {
    const total = 16 * 1024 * 1024;
    mock.set({ bodyBytes: total });
    const pauseMs = 300;
    let paused = false;
    let pausedOnce = false;
    let chunksWhilePaused = 0;
    let sentAtResume = 0;
    const f = forward(
      pool,
      { body: chatBody({ stream: true }) },
      {
        onData(_chunk, control) {
          if (paused) chunksWhilePaused++;
          if (pausedOnce) return true;
          // First chunk: stop reading for pauseMs, like a client whose socket is full.
          paused = true;
          pausedOnce = true;
          setTimeout(() => {
            sentAtResume = mock.stats.bytesSent;
            paused = false;
            control.resume();
          }, pauseMs);
          return false;
        },
      },
    );
    const out = await f.done;
    const expected = Buffer.concat(buildStream('openai-chat', 'mock-model', { ...shape, events: 8, bodyBytes: total }, false).events);
    expect(out.error).toBeNull();
    expect(chunksWhilePaused).toBe(0);
    // The mock could not write the body while we were not reading: its socket buffer filled
    // (kernel buffers on loopback absorb a few MiB; a gateway that buffered would take all 16).
    expect(sentAtResume).toBeLessThan(expected.length * 0.75);
    expect(mock.stats.blockedMs).toBeGreaterThan(pauseMs / 2);
    expect(sha(out.body)).toBe(sha(expected));
  });

  it('a reader that pauses on every chunk and resumes later still gets the exact bytes', async () => {
    mock.set({ bodyBytes: 2 * 1024 * 1024 });
    const f = forward(
      pool,
      { body: chatBody({ stream: true }) },
      {
        onData(_chunk, control) {
          setImmediate(() => control.resume());
          return false;
        },
      },
    );
    const out = await f.done;
    const expected = Buffer.concat(
      buildStream('openai-chat', 'mock-model', { ...shape, events: 8, bodyBytes: 2 * 1024 * 1024 }, false).events,
    );
    expect(out.chunks).toBeGreaterThan(10);
    expect(sha(out.body)).toBe(sha(expected));
  });

  it('resume() called synchronously inside onData does not pause', async () => {
    mock.set({ bodyBytes: 512 * 1024 });
    const f = forward(
      pool,
      { body: chatBody({ stream: true }) },
      {
        onData(_chunk, control) {
          control.resume();
          return false;
        },
      },
    );
    const out = await f.done;
    expect(out.error).toBeNull();
    expect(out.body.length).toBeGreaterThan(512 * 1024);
  });
});
