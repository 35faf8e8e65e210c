import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { UpstreamState } from '../../src/proxy/health.js';
import { createUpstreamPool, type ManagedUpstreamPool, type UpstreamPoolOptions } from '../../src/proxy/pool.js';
import { parseUpstreamUrls } from '../../src/proxy/upstreams.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { forward } from './helpers.js';

/** Records state transitions and lets a test await the next one into a given state. */
function transitions(): { opts: Pick<UpstreamPoolOptions, 'onStateChange'>; seen: string[]; next: (to: UpstreamState) => Promise<void> } {
  const seen: string[] = [];
  const waiting: Array<{ to: UpstreamState; resolve: () => void }> = [];
  return {
    seen,
    opts: {
      onStateChange(_name, from, to) {
        seen.push(`${from}->${to}`);
        for (const w of waiting.filter((w) => w.to === to)) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve();
        }
      },
    },
    next: (to) => new Promise((resolve) => waiting.push({ to, resolve })),
  };
}

describe('upstream health', () => {
  let mock: MockUpstream;
  let pool: ManagedUpstreamPool | null = null;

  beforeAll(async () => {
    mock = await startMockUpstream();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await pool?.close();
    pool = null;
    mock.reset();
  });
  afterAll(async () => {
    await mock.close();
  });

  it('the active probe ejects a failing upstream and re-admits it once it passes', async () => {
    const t = transitions();
    pool = createUpstreamPool(parseUpstreamUrls(mock.url), {
      probe: { intervalMs: 20, path: '/', timeoutMs: 1_000 },
      health: { probeFailureThreshold: 2 },
      ...t.opts,
    });
    const ejected = t.next('ejected');
    mock.set({ status: 503 });
    await ejected;
    expect(pool.status()[0]).toMatchObject({ state: 'ejected', lastError: 'http_503' });
    expect(pool.anyHealthy()).toBe(false);
    const before = mock.requests.filter((r) => r.method === 'POST').length;
    const refused = await forward(pool).done;
    expect(refused.error?.code).toBe('upstream_unavailable');
    expect(mock.requests.filter((r) => r.method === 'POST').length).toBe(before);

    const healthy = t.next('healthy');
    mock.set({ status: null });
    await healthy;
    expect(pool.anyHealthy()).toBe(true);
    expect((await forward(pool).done).status).toBe(200);
    expect(mock.requests.some((r) => r.method === 'GET' && r.path === '/')).toBe(true);
    expect(t.seen).toEqual(['healthy->ejected', 'ejected->healthy']);
  });

  it('breaker: opens after consecutive failures, half-opens after the backoff with one trial, closes on success', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const t = transitions();
    pool = createUpstreamPool(parseUpstreamUrls(mock.url), {
      probe: false,
      maxRetries: 0,
      now: () => Date.now(),
      health: { failureThreshold: 3, baseOpenMs: 10_000, maxOpenMs: 60_000 },
      ...t.opts,
    });
    mock.set({ status: 503 });
    for (let i = 0; i < 3; i++) expect((await forward(pool).done).status).toBe(503);
    expect(pool.status()[0]).toMatchObject({ state: 'open', ejectedUntil: t0 + 10_000, consecutiveFailures: 3 });
    // Open: fail fast without touching the upstream.
    expect((await forward(pool).done).error?.code).toBe('upstream_unavailable');
    expect(mock.requests.length).toBe(3);

    vi.setSystemTime(t0 + 10_000);
    expect(pool.status()[0]?.state).toBe('half_open');
    expect(pool.anyHealthy()).toBe(true);
    // The trial fails: open again for twice as long.
    expect((await forward(pool).done).status).toBe(503);
    expect(pool.status()[0]).toMatchObject({ state: 'open', ejectedUntil: t0 + 30_000 });

    vi.setSystemTime(t0 + 30_000);
    mock.set({ status: null, neverAnswer: true });
    const trial = forward(pool);
    await mock.waitForRequests(5);
    // Exactly one trial at a time.
    expect((await forward(pool).done).error?.code).toBe('upstream_unavailable');
    trial.abort.abort();
    await trial.done;
    // An aborted trial decides nothing; the next request is the trial and it succeeds.
    mock.set({ neverAnswer: false });
    expect((await forward(pool).done).status).toBe(200);
    expect(pool.status()[0]).toMatchObject({ state: 'healthy', consecutiveFailures: 0, ejectedUntil: null });
    expect(t.seen).toEqual(['healthy->open', 'open->half_open', 'half_open->open', 'open->half_open', 'half_open->healthy']);
  });

  it('a passing probe half-opens a tripped breaker early', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t = transitions();
    pool = createUpstreamPool(parseUpstreamUrls(mock.url), {
      probe: false,
      maxRetries: 0,
      now: () => Date.now(),
      health: { failureThreshold: 1, baseOpenMs: 60_000 },
      ...t.opts,
    });
    mock.set({ status: 500 });
    await forward(pool).done;
    expect(pool.status()[0]?.state).toBe('open');
    mock.set({ status: null });
    await pool.probeNow();
    expect(pool.status()[0]?.state).toBe('half_open');
    expect((await forward(pool).done).status).toBe(200);
    expect(pool.status()[0]?.state).toBe('healthy');
  });
});
