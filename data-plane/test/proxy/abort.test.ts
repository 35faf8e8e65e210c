import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { createUpstreamPool, type ManagedUpstreamPool } from '../../src/proxy/pool.js';
import { parseUpstreamUrls } from '../../src/proxy/upstreams.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { chatBody, forward } from './helpers.js';

describe('client aborts', () => {
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

  it('before the first byte: onError(started = false) at once, and the upstream sees the close', async () => {
    mock.set({ neverAnswer: true });
    const f = forward(pool);
    await mock.waitForRequests(1);
    f.abort.abort();
    const out = await f.done;
    expect(out.error).toBeInstanceOf(GatewayError);
    expect(out.error?.code).toBe('client_closed_request');
    expect(out.startedAtError).toBe(false);
    expect(out.endings).toBe(1);
    expect(await mock.requests[0]?.closed).toEqual({ early: true });
    expect(pool.status()[0]?.outstanding).toBe(0);
    // A client going away is not the upstream's fault.
    expect(pool.status()[0]?.failures).toBe(0);
  });

  it('mid-stream: the upstream request is aborted and nothing more is delivered', async () => {
    mock.set({ eventDelayMs: 10, events: 1_000 });
    const f = forward(pool, { body: chatBody({ stream: true }) });
    await f.firstChunk;
    f.abort.abort();
    const out = await f.done;
    const chunksAtAbort = out.chunks;
    expect(out.startedAtError).toBe(true);
    expect(await mock.requests[0]?.closed).toEqual({ early: true });
    expect(out.chunks).toBe(chunksAtAbort);
    expect(mock.stats.bytesSent).toBeLessThan(100_000);
  });

  it('control.abort(reason) mid-stream reports that reason (e.g. a token budget cut)', async () => {
    mock.set({ eventDelayMs: 10, events: 1_000 });
    const f = forward(
      pool,
      { body: chatBody({ stream: true }) },
      {
        onData(_chunk, control) {
          control.abort(new GatewayError('rate_limit_exceeded'));
          return true;
        },
      },
    );
    const out = await f.done;
    expect(out.error?.code).toBe('rate_limit_exceeded');
    expect(out.startedAtError).toBe(true);
    expect(out.chunks).toBe(1);
    expect(await mock.requests[0]?.closed).toEqual({ early: true });
  });

  it('a signal aborted before forward() never reaches the upstream', async () => {
    const ac = new AbortController();
    ac.abort();
    const f = forward(pool, { signal: ac.signal });
    const out = await f.done;
    expect(out.startedAtError).toBe(false);
    expect(out.endings).toBe(1);
    expect(mock.requests.length).toBe(0);
  });

  it('a handler that throws ends the exchange with internal_error and is not blamed on the upstream', async () => {
    mock.set({ eventDelayMs: 10, events: 1_000 });
    const f = forward(
      pool,
      { body: chatBody({ stream: true }) },
      {
        onData() {
          throw new Error('bug in the route');
        },
      },
    );
    const out = await f.done;
    expect(out.error?.code).toBe('internal_error');
    expect(out.startedAtError).toBe(true);
    expect(out.endings).toBe(1);
    expect(await mock.requests[0]?.closed).toEqual({ early: true });
    expect(pool.status()[0]?.failures).toBe(0);
  });

  it('CONNECT is refused without reaching the upstream (no tunnels)', async () => {
    const out = await forward(pool, { method: 'CONNECT', body: null }).done;
    expect(out.error?.code).toBe('method_not_allowed');
    expect(mock.requests.length).toBe(0);
  });

  it('while still connecting: onError at once, long before the connect timeout', async () => {
    // An https upstream that accepts TCP but never answers the TLS handshake.
    const sockets = new Set<Socket>();
    const silent = createServer((s) => sockets.add(s));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const p = createUpstreamPool(parseUpstreamUrls(`https://127.0.0.1:${(silent.address() as { port: number }).port}`), {
      probe: false,
      connectTimeoutMs: 10_000,
    });
    try {
      const f = forward(p);
      await new Promise<void>((r) => silent.once('connection', () => r()));
      const t0 = performance.now();
      f.abort.abort();
      const out = await f.done;
      expect(performance.now() - t0).toBeLessThan(100);
      expect(out.startedAtError).toBe(false);
      expect(p.status()[0]?.outstanding).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      await p.close();
      silent.close();
    }
  });
});
