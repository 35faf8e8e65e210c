/**
 * A stalled client's backpressure must reach the upstream through the whole gateway (TLS client
 * → uWS → relay → undici → model server), and the bytes must stay exact once it reads again.
 *
 * Each client reads ~64 KiB and then stops reading until the mock upstream reports a blocked
 * write (its socket buffer is full because the gateway stopped reading it) and its sent-byte
 * count has stopped growing with most of the stream still unsent: proof that the gateway paused
 * the upstream instead of buffering the stream itself. Then it reads the rest and compares
 * length and SHA-256 with the bytes the mock builds for that shape.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGateway, type Gateway } from '../support/gateway.js';
import { buildStream, startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { waitUntil } from '../support/services.js';

const shape = (events: number, bodyBytes = 0) => ({ events, bodyBytes, usage: true, promptTokens: 9 });
const STALL_AFTER = 64 * 1024;
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let mock: MockUpstream;
let gw: Gateway;
let key: string;

beforeAll(async () => {
  mock = await startMockUpstream();
  gw = await startGateway({ upstreams: mock.url });
  // Enterprise: these tests are about the pump, not the free tier's token limit.
  key = (await gw.issueKey(undefined, 'enterprise')).secret;
});
afterAll(async () => {
  await gw?.stop();
  await mock?.close();
});
beforeEach(() => mock.reset());
afterEach(() => mock.reset());

/** Rejects after `ms` so no wait in this file is unbounded. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface StalledRead {
  received: number;
  sha256: string;
  /** Bytes the client had read when it stopped reading. */
  readBeforeStall: number;
  /** mock.stats.bytesSent once the upstream had been parked by backpressure. */
  sentWhileStalled: number;
  /** mock.active at that moment (1: the upstream is still mid-answer, not done). */
  activeWhileStalled: number;
}

/** Reads ~64 KiB, stops until the upstream is held back and parked, then reads the rest. */
async function readStalled(body: Readable): Promise<StalledRead> {
  const hash = createHash('sha256');
  let received = 0;
  let stall: Omit<StalledRead, 'received' | 'sha256'> | undefined;
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    received += (chunk as Buffer).byteLength;
    if (stall !== undefined || received < STALL_AFTER) continue;
    // Not consuming `body` here: undici stops reading the TLS socket, the gateway's uWS
    // backlog fills, the gateway must pause its upstream body, the mock's writes block.
    await waitUntil(() => mock.stats.writesBlocked > 0, {
      timeoutMs: 10_000,
      message: 'upstream writes never blocked while the client stalled',
    });
    // ...and the upstream stays parked: bytesSent stops growing (stable for 300 ms).
    let last = -1;
    let since = performance.now();
    await waitUntil(
      () => {
        const now = performance.now();
        if (mock.stats.bytesSent !== last) {
          last = mock.stats.bytesSent;
          since = now;
          return false;
        }
        return now - since >= 300;
      },
      { timeoutMs: 10_000, intervalMs: 20, message: 'upstream kept sending while the client stalled' },
    );
    stall = { readBeforeStall: received, sentWhileStalled: mock.stats.bytesSent, activeWhileStalled: mock.active };
  }
  if (stall === undefined) throw new Error(`stream ended after ${received} bytes, before the client stalled`);
  return { received, sha256: hash.digest('hex'), ...stall };
}

const streamChat = (content: string) =>
  request(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher: gw.dispatcher,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'mock-model',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content }],
    }),
  });

async function expectStalledStreamExact(expected: Buffer, content: string): Promise<void> {
  const res = await within(streamChat(content), 10_000, 'response headers');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toContain('text/event-stream');
  const r = await within(readStalled(res.body), 40_000, 'stalled read');

  // Backpressure reached the upstream: it was held back and parked with most of the stream unsent.
  expect(mock.stats.writesBlocked).toBeGreaterThan(0);
  expect(r.readBeforeStall).toBeLessThan(1024 * 1024);
  expect(r.activeWhileStalled).toBe(1);
  expect(r.sentWhileStalled).toBeLessThan(expected.byteLength / 2);

  // Exact bytes once the client read on.
  expect(r.received).toBe(expected.byteLength);
  expect(r.sha256).toBe(sha256(expected));
  expect(mock.requests).toHaveLength(1);
  expect(await within(mock.requests[0]!.closed, 5_000, 'upstream exchange end')).toEqual({ early: false });
  expect(mock.stats.bytesSent).toBe(expected.byteLength);
}

describe('slow readers through the whole gateway', () => {
  it('a 24 MB stream read by a client that stalls after 64 KiB holds back the upstream and arrives byte-exact', async () => {
    const bodyBytes = 24 * 1024 * 1024;
    mock.set({ bodyBytes, events: 4 });
    const expected = Buffer.concat(buildStream('openai-chat', 'mock-model', shape(4, bodyBytes), true).events);
    expect(expected.byteLength).toBeGreaterThanOrEqual(bodyBytes);
    await expectStalledStreamExact(expected, 'big');
  });

  it('120k small SSE events read by a client that stalls after 64 KiB hold back the upstream and arrive byte-exact', async () => {
    const events = 120_000;
    mock.set({ events });
    const built = buildStream('openai-chat', 'mock-model', shape(events), true).events;
    // role chunk + 120k content chunks + stop chunk + usage chunk + [DONE], each a few hundred bytes.
    expect(built).toHaveLength(events + 4);
    const expected = Buffer.concat(built);
    expect(Math.max(...built.map((e) => e.byteLength))).toBeLessThan(1024);
    expect(expected.byteLength).toBeGreaterThan(10 * 1024 * 1024);
    await expectStalledStreamExact(expected, 'many');
  });
});
