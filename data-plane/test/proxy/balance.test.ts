import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createUpstreamPool, type ManagedUpstreamPool } from '../../src/proxy/pool.js';
import type { UpstreamDefinition } from '../../src/proxy/types.js';
import { parseUpstreamsJson } from '../../src/proxy/upstreams.js';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.js';
import { forward, type Forwarded } from './helpers.js';

/** Resolves once the mocks together have recorded `n` requests. */
function received(mocks: MockUpstream[], n: number): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (mocks.reduce((s, m) => s + m.requests.length, 0) < n) return;
      offs.forEach((off) => off());
      resolve();
    };
    const offs = mocks.map((m) => m.onRequest(check));
    check();
  });
}

const tagged = (id: number): Map<string, string> =>
  new Map([
    ['content-type', 'application/json'],
    ['x-test-id', String(id)],
  ]);
const ids = (m: MockUpstream): string[] => m.requests.map((r) => String(r.headers['x-test-id']));

describe('balancing and model routing', () => {
  let mocks: MockUpstream[];
  let pool: ManagedUpstreamPool | null = null;
  let open: Forwarded[] = [];
  const make = (defs: UpstreamDefinition[]): ManagedUpstreamPool => (pool = createUpstreamPool(defs, { probe: false }));

  beforeAll(async () => {
    mocks = await Promise.all([startMockUpstream(), startMockUpstream(), startMockUpstream()]);
  });
  afterEach(async () => {
    open.forEach((f) => f.abort.abort());
    await Promise.all(open.map((f) => f.done));
    open = [];
    await pool?.close();
    mocks.forEach((m) => m.reset());
  });
  afterAll(async () => {
    await Promise.all(mocks.map((m) => m.close()));
  });

  it('least outstanding requests: new requests go where fewest are in flight', async () => {
    const [a, b, c] = mocks as [MockUpstream, MockUpstream, MockUpstream];
    mocks.forEach((m) => m.set({ neverAnswer: true }));
    const p = make(
      parseUpstreamsJson([
        { name: 'a', url: a.url },
        { name: 'b', url: b.url },
        { name: 'c', url: c.url },
      ]),
    );
    for (let i = 0; i < 6; i++) open.push(forward(p, { headers: tagged(i) }));
    await received(mocks, 6);
    expect(mocks.map((m) => m.requests.length)).toEqual([2, 2, 2]);
    // Free a's two slots: the next two requests must both go to a (round-robin would spread them).
    for (const id of ids(a)) open[Number(id)]?.abort.abort();
    await Promise.all(ids(a).map((id) => open[Number(id)]?.done));
    expect(p.status().map((s) => s.outstanding)).toEqual([0, 2, 2]);
    for (let i = 6; i < 8; i++) open.push(forward(p, { headers: tagged(i) }));
    await received(mocks, 8);
    expect(mocks.map((m) => m.requests.length)).toEqual([4, 2, 2]);
  });

  it('weights: a weight-3 upstream carries about three times the concurrent requests', async () => {
    const [a, b] = mocks as [MockUpstream, MockUpstream];
    a.set({ neverAnswer: true });
    b.set({ neverAnswer: true });
    const p = make(
      parseUpstreamsJson([
        { name: 'a', url: a.url, weight: 3 },
        { name: 'b', url: b.url, weight: 1 },
      ]),
    );
    for (let i = 0; i < 8; i++) open.push(forward(p, { headers: tagged(i) }));
    await received([a, b], 8);
    expect(a.requests.length).toBe(6);
    expect(b.requests.length).toBe(2);
  });

  it('routes by model to the upstreams that list it; others go to any-model upstreams', async () => {
    const [a, b, c] = mocks as [MockUpstream, MockUpstream, MockUpstream];
    const p = make(
      parseUpstreamsJson([
        { name: 'llama', url: a.url, models: ['llama3'] },
        { name: 'qwen', url: b.url, models: ['qwen', 'qwen-coder'] },
        { name: 'any', url: c.url },
      ]),
    );
    const sent = async (model: string | null): Promise<string | null> => (await forward(p, { model }).done).upstream;
    for (let i = 0; i < 3; i++) expect(await sent('qwen')).toBe('qwen');
    expect(await sent('qwen-coder')).toBe('qwen');
    expect(await sent('llama3')).toBe('llama');
    expect(await sent('mistral')).toBe('any');
    expect(await sent(null)).toBe('any');
    // The listing upstream failing before the first byte: fail over to an any-model upstream.
    b.set({ status: 503 });
    expect(await sent('qwen')).toBe('any');
  });
});
