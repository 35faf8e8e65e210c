import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../support/gateway.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { openTls, rawExchange, statusOf } from '../support/raw-tls.js';
import { waitUntil } from '../support/services.js';

let mock: MockUpstream;
let gw: Gateway;
let key: string;

beforeAll(async () => {
  mock = await startMockUpstream({ events: 10 });
  gw = await startGateway({
    upstreams: mock.url,
    env: { UPSTREAM_HEADERS_TIMEOUT_MS: '1000', UPSTREAM_IDLE_TIMEOUT_MS: '1000', UPSTREAM_MAX_RETRIES: '0', SSE_HEARTBEAT_MS: '300' },
  });
  // Enterprise: these tests are about the pump and its faults, not the free tier's token limit.
  key = (await gw.issueKey(undefined, 'enterprise')).secret;
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
});

const chat = (body: Record<string, unknown> = {}) =>
  request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hi' }], ...body }),
  });

const stillHealthy = async () => {
  const res = await request(`${gw.url}/healthz`, { dispatcher: gw.dispatcher });
  expect(res.statusCode).toBe(200);
  await res.body.text();
  expect(gw.child.exitCode).toBeNull();
};

describe('upstream faults', () => {
  it('an upstream dying mid-stream ends the SSE stream with one error event', async () => {
    mock.set({ dieAfterEvents: 3 });
    try {
      const res = await chat({ stream: true });
      expect(res.statusCode).toBe(200);
      const text = await res.body.text();
      const events = text.split('\n\n').filter((e) => e.startsWith('data: '));
      expect(events.filter((e) => e.includes('"error"'))).toHaveLength(1);
      expect(events.at(-1)).toMatch(/"error":\{"message":".+","type":"upstream_error","code":"upstream_/);
      expect(text).not.toContain('[DONE]');
    } finally {
      mock.reset();
    }
    await stillHealthy();
  });

  it('an upstream that never answers is a 504 with the headers-timeout code', async () => {
    mock.set({ neverAnswer: true });
    try {
      const res = await chat();
      expect(res.statusCode).toBe(504);
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('upstream_headers_timeout');
    } finally {
      mock.reset();
    }
  });

  it('a streaming request waiting on a silent upstream gets heartbeats, then the SSE timeout error', async () => {
    mock.set({ neverAnswer: true });
    try {
      const res = await chat({ stream: true });
      // The gateway committed the event stream to keep the connection alive.
      expect(res.statusCode).toBe(200);
      const text = await res.body.text();
      expect(text).toContain(': keep-alive\n\n');
      expect(text).toMatch(/data: \{"error":\{.*"code":"upstream_headers_timeout"\}\}\n\n$/);
    } finally {
      mock.reset();
    }
  });

  it('an upstream that goes silent mid-stream is cut by the idle timeout', async () => {
    mock.set({ events: 5, eventDelayMs: 2500 });
    try {
      const res = await chat({ stream: true });
      const text = await res.body.text();
      expect(text).toMatch(/"code":"upstream_idle_timeout"/);
    } finally {
      mock.reset();
    }
  });

  it('garbage from the upstream is a 502 upstream_bad_response', async () => {
    mock.set({ garbage: true });
    try {
      const res = await chat();
      expect(res.statusCode).toBe(502);
      expect(((await res.body.json()) as { error: { code: string } }).error.code).toBe('upstream_bad_response');
    } finally {
      mock.reset();
    }
  });

  it('an upstream 5xx before the first byte is relayed when no other upstream exists', async () => {
    mock.set({ status: 503 });
    try {
      const res = await chat();
      expect(res.statusCode).toBe(503);
      await res.body.text();
    } finally {
      mock.reset();
    }
  });
});

describe('clients that misbehave', () => {
  it('a client that disconnects mid-stream aborts the upstream request at once', async () => {
    mock.set({ events: 200, eventDelayMs: 20 });
    try {
      const before = mock.requests.length;
      const socket = await openTls(gw.publicPort);
      const body = JSON.stringify({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'x' }] });
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      await new Promise<void>((resolve) => socket.once('data', () => resolve()));
      await mock.waitForRequests(before + 1);
      socket.destroy();
      const closed = await mock.requests[before]!.closed;
      expect(closed.early).toBe(true);
    } finally {
      mock.reset();
    }
    await stillHealthy();
  });

  it('a client that disconnects before the upstream answers aborts it too', async () => {
    mock.set({ headersDelayMs: 5_000 });
    try {
      const before = mock.requests.length;
      const socket = await openTls(gw.publicPort);
      const body = JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'x' }] });
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      await mock.waitForRequests(before + 1);
      socket.destroy();
      expect((await mock.requests[before]!.closed).early).toBe(true);
    } finally {
      mock.reset();
    }
  });

  it('a client that disconnects mid-upload never reaches the upstream', async () => {
    const before = mock.requests.length;
    const socket = await openTls(gw.publicPort);
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"model":"mock-model",`,
    );
    await new Promise((r) => socket.write('"messages":', r));
    socket.destroy();
    await stillHealthy();
    expect(mock.requests.length).toBe(before);
  });

  it('a truncated chunked request body never reaches the upstream', async () => {
    const before = mock.requests.length;
    const answer = await rawExchange(
      gw.publicPort,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n{"model":"mock-model"`,
      { idleMs: 500, endAfterWrite: true },
    );
    expect(statusOf(answer) === 0 || statusOf(answer) === 400).toBe(true);
    expect(mock.requests.length).toBe(before);
    await stillHealthy();
  });

  it('a header line with junk gets a 4xx or a closed connection, and the server keeps serving', async () => {
    const answer = await rawExchange(
      gw.publicPort,
      'GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header With Spaces\r\n\x00\x01\x02: \xff\r\n\r\n',
      { idleMs: 500 },
    );
    expect(statusOf(answer) === 0 || (statusOf(answer) >= 400 && statusOf(answer) < 500)).toBe(true);
    await stillHealthy();
  });

  it('random bytes instead of HTTP do not hurt the server', async () => {
    const junk = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256));
    await rawExchange(gw.publicPort, junk, { idleMs: 300 });
    await stillHealthy();
  });
});

describe('limits', () => {
  it('per-key concurrency beyond the cap is a 429 with Retry-After', async () => {
    const limited = await startGateway({ upstreams: mock.url, env: { PER_KEY_CONCURRENCY: '2' } });
    const k = (await limited.issueKey()).secret;
    mock.set({ headersDelayMs: 400 });
    try {
      const send = () =>
        request(`${limited.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: limited.dispatcher,
          headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'mock-model', messages: [] }),
        });
      const results = await Promise.all([send(), send(), send(), send()]);
      const statuses = results.map((r) => r.statusCode).sort();
      await Promise.all(results.map((r) => r.body.text()));
      expect(statuses).toEqual([200, 200, 429, 429]);
      expect(results.find((r) => r.statusCode === 429)!.headers['retry-after']).toBe('1');
    } finally {
      mock.reset();
      await limited.stop();
    }
  });

  it('the replica-wide cap answers 503 server_busy', async () => {
    const limited = await startGateway({ upstreams: mock.url, env: { MAX_CONCURRENT_REQUESTS: '1' } });
    const k = (await limited.issueKey()).secret;
    mock.set({ headersDelayMs: 400 });
    try {
      const send = () => request(`${limited.url}/v1/models`, { dispatcher: limited.dispatcher, headers: { authorization: `Bearer ${k}` } });
      const results = await Promise.all([send(), send()]);
      const bodies = await Promise.all(results.map((r) => r.body.text()));
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 503]);
      expect(bodies.find((b) => b.includes('server_busy'))).toBeDefined();
    } finally {
      mock.reset();
      await limited.stop();
    }
  });

  it('waits for in-flight streams to finish before exiting on SIGTERM', async () => {
    const draining = await startGateway({ upstreams: mock.url });
    const k = (await draining.issueKey()).secret;
    mock.set({ events: 10, eventDelayMs: 50 });
    try {
      const res = await request(`${draining.url}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: draining.dispatcher,
        headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock-model', stream: true, messages: [] }),
      });
      draining.child.kill('SIGTERM');
      const text = await res.body.text();
      expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
      await waitUntil(() => draining.child.exitCode !== null, { timeoutMs: 10_000 });
      expect(draining.child.exitCode).toBe(0);
    } finally {
      mock.reset();
      await draining.stop();
    }
  });
});
