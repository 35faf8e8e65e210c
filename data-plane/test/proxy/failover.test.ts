import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createUpstreamPool, type ManagedUpstreamPool, type UpstreamPoolOptions } from '../../src/proxy/pool.js';
import type { UpstreamDefinition } from '../../src/proxy/types.js';
import { parseUpstreamsJson, parseUpstreamUrls } from '../../src/proxy/upstreams.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { chatBody, forward } from './helpers.js';

/** A port nothing listens on (connections are refused). */
async function refusedUrl(): Promise<string> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/** A TCP server that accepts and never speaks: an https upstream never completes its handshake. */
async function silentTls(): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `https://127.0.0.1:${(server.address() as { port: number }).port}`, server, sockets };
}

describe('failover, errors and timeouts', () => {
  let a: MockUpstream;
  let b: MockUpstream;
  const pools: ManagedUpstreamPool[] = [];
  const make = (defs: UpstreamDefinition[], o: UpstreamPoolOptions = {}): ManagedUpstreamPool => {
    const p = createUpstreamPool(defs, { probe: false, ...o });
    pools.push(p);
    return p;
  };

  beforeAll(async () => {
    a = await startMockUpstream();
    b = await startMockUpstream();
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    a.reset();
    b.reset();
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it('fails over when an upstream refuses connections', async () => {
    const pool = make(parseUpstreamUrls(`${await refusedUrl()},${b.url}`));
    for (let i = 0; i < 4; i++) {
      const out = await forward(pool).done;
      expect(out.error).toBeNull();
      expect(out.upstream).toBe(`127.0.0.1:${b.port}`);
    }
    const refused = pool.status()[0];
    expect(refused?.failures).toBeGreaterThan(0);
    expect(refused?.lastError).toBe('upstream_unavailable');
  });

  it('fails over on a 503 before the first byte; the client never sees it', async () => {
    a.set({ status: 503 });
    const pool = make(parseUpstreamUrls(`${a.url},${b.url}`));
    for (let i = 0; i < 4; i++) {
      const out = await forward(pool).done;
      expect(out.status).toBe(200);
      expect(out.upstream).toBe(`127.0.0.1:${b.port}`);
    }
    expect(a.requests.length).toBeGreaterThan(0);
    expect(b.requests.length).toBe(4);
  });

  it('forwards the last upstream answer when every attempt gets a 5xx', async () => {
    a.set({ status: 502 });
    const pool = make(parseUpstreamUrls(a.url), { maxRetries: 2 });
    const out = await forward(pool).done;
    expect(out.error).toBeNull();
    expect(out.status).toBe(502);
    expect(JSON.parse(out.body.toString()).error.message).toBe('mock status 502');
    expect(a.requests.length).toBe(3);
  });

  it('never retries after the first byte: mid-stream death is onError(started = true)', async () => {
    a.set({ dieAfterEvents: 3, eventDelayMs: 5 });
    const defs = parseUpstreamsJson([
      { name: 'a', url: a.url, weight: 1000 },
      { name: 'b', url: b.url },
    ]);
    const pool = make(defs);
    const out = await forward(pool, { body: chatBody({ stream: true }) }).done;
    expect(out.status).toBe(200);
    expect(out.error?.code).toBe('upstream_failed');
    expect(out.startedAtError).toBe(true);
    expect(out.endings).toBe(1);
    expect(
      out.body
        .toString()
        .split('\n\n')
        .filter((e) => e !== '').length,
    ).toBe(3);
    expect(a.requests.length).toBe(1);
    expect(b.requests.length).toBe(0);
  });

  it('maps bytes that are not HTTP to upstream_bad_response, without retrying', async () => {
    a.set({ garbage: true });
    const pool = make(parseUpstreamUrls(`${a.url}`), { maxRetries: 2 });
    const out = await forward(pool).done;
    expect(out.error?.code).toBe('upstream_bad_response');
    expect(out.error?.status).toBe(502);
    expect(out.startedAtError).toBe(false);
    expect(a.requests.length).toBe(1);
  });

  it('maps a broken chunked body to upstream_bad_response after the start', async () => {
    a.set({ invalidChunked: true });
    const pool = make(parseUpstreamUrls(a.url));
    const out = await forward(pool, { body: chatBody({ stream: true }) }).done;
    expect(out.status).toBe(200);
    expect(out.error?.code).toBe('upstream_bad_response');
    expect(out.startedAtError).toBe(true);
  });

  it('connect timeout → 504 upstream_connect_timeout (retried, as nothing was sent)', async () => {
    const silent = await silentTls();
    try {
      const pool = make(parseUpstreamUrls(silent.url), { connectTimeoutMs: 100, maxRetries: 1 });
      const t0 = performance.now();
      const out = await forward(pool).done;
      expect(out.error?.code).toBe('upstream_connect_timeout');
      expect(out.error?.status).toBe(504);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(190);
      expect(pool.status()[0]?.failures).toBe(2);
    } finally {
      for (const s of silent.sockets) s.destroy();
      silent.server.close();
    }
  });

  it('headers timeout → 504 upstream_headers_timeout, not retried (the request was sent)', async () => {
    a.set({ headersDelayMs: 1_000 });
    const defs = parseUpstreamsJson([
      { name: 'a', url: a.url, weight: 1000 },
      { name: 'b', url: b.url },
    ]);
    const pool = make(defs, { headersTimeoutMs: 100 });
    const out = await forward(pool).done;
    expect(out.error?.code).toBe('upstream_headers_timeout');
    expect(out.error?.status).toBe(504);
    expect(out.startedAtError).toBe(false);
    expect(a.requests.length).toBe(1);
    expect(b.requests.length).toBe(0);
  });

  it('idle timeout between chunks → 504 upstream_idle_timeout after the start', async () => {
    a.set({ eventDelayMs: 1_000, events: 3 });
    const pool = make(parseUpstreamUrls(a.url), { idleTimeoutMs: 100 });
    const out = await forward(pool, { body: chatBody({ stream: true }) }).done;
    expect(out.status).toBe(200);
    expect(out.error?.code).toBe('upstream_idle_timeout');
    expect(out.startedAtError).toBe(true);
  });

  it('total timeout → 504 upstream_total_timeout, before or after the start, and the upstream is aborted', async () => {
    a.set({ eventDelayMs: 20, events: 500 });
    const pool = make(parseUpstreamUrls(a.url), { totalTimeoutMs: 150 });
    const mid = await forward(pool, { body: chatBody({ stream: true }) }).done;
    expect(mid.error?.code).toBe('upstream_total_timeout');
    expect(mid.startedAtError).toBe(true);
    expect(await a.requests[0]?.closed).toEqual({ early: true });

    a.set({ neverAnswer: true });
    const before = await forward(pool).done;
    expect(before.error?.code).toBe('upstream_total_timeout');
    expect(before.startedAtError).toBe(false);
    expect(await a.requests[1]?.closed).toEqual({ early: true });
    // A total timeout says nothing about the upstream's health.
    expect(pool.status()[0]?.failures).toBe(0);
  });
});
