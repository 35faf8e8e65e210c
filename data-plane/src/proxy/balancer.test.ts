import { describe, expect, it } from 'vitest';
import { Balancer, type BalancedUpstream } from './balancer.js';
import { DEFAULT_HEALTH, UpstreamHealth } from './health.js';

const up = (name: string, models: string[] = [], weight = 1): BalancedUpstream => ({
  def: { name, baseUrl: new URL(`http://${name}`), credential: null, models, weight },
  health: new UpstreamHealth({ ...DEFAULT_HEALTH, failureThreshold: 1 }),
  outstanding: 0,
});

describe('Balancer', () => {
  it('round-robins idle equal upstreams and prefers the least loaded', () => {
    const [a, b, c] = [up('a'), up('b'), up('c')];
    const bal = new Balancer([a, b, c]);
    expect([0, 1, 2, 3].map(() => bal.pick(null, [], 0)?.upstream.def.name)).toEqual(['a', 'b', 'c', 'a']);
    a.outstanding = 2;
    b.outstanding = 1;
    expect([0, 1, 2].map(() => bal.pick(null, [], 0)?.upstream.def.name)).toEqual(['c', 'c', 'c']);
  });

  it('skips unavailable upstreams and tried ones when another exists', () => {
    const [a, b] = [up('a'), up('b')];
    const bal = new Balancer([a, b]);
    a.health.failure(0, 'x', false);
    expect(bal.pick(null, [], 0)?.upstream).toBe(b);
    expect(bal.pick(null, [b], 0)?.upstream).toBe(b);
    b.health.failure(0, 'x', false);
    expect(bal.pick(null, [], 0)).toBeNull();
  });

  it('model routing falls back from listing upstreams to any-model ones', () => {
    const [l, q, any] = [up('l', ['llama3']), up('q', ['qwen']), up('any')];
    const bal = new Balancer([l, q, any]);
    expect(bal.pick('qwen', [], 0)?.upstream).toBe(q);
    expect(bal.pick('other', [], 0)?.upstream).toBe(any);
    expect(bal.pick('qwen', [q], 0)?.upstream).toBe(any);
    const onlyListed = new Balancer([l, q]);
    expect(['x', 'x'].map((m) => onlyListed.pick(m, [], 0)?.upstream.def.name).sort()).toEqual(['l', 'q']);
  });
});
