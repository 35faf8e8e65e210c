import { describe, expect, it } from 'vitest';
import { RestartBackoff } from './backoff.js';

const policy = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 };

describe('restart backoff', () => {
  it('doubles from the initial delay up to the cap while the child keeps dying young', () => {
    const b = new RestartBackoff(policy);
    const delays = Array.from({ length: 8 }, () => b.next(500));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    expect(b.crashes).toBe(8);
  });

  it('counts a child that never became ready as dying young', () => {
    const b = new RestartBackoff(policy);
    expect([b.next(null), b.next(null), b.next(null)]).toEqual([1000, 2000, 4000]);
  });

  it('starts over once the child had stayed up for the reset period', () => {
    const b = new RestartBackoff(policy);
    for (let i = 0; i < 5; i++) b.next(1000);
    expect(b.next(59_999)).toBe(30_000);
    expect(b.next(60_000)).toBe(1000);
    expect(b.next(10)).toBe(2000);
  });

  it('never overflows after a very long crash loop', () => {
    const b = new RestartBackoff(policy);
    for (let i = 0; i < 2000; i++) b.next(null);
    expect(b.next(null)).toBe(30_000);
  });
});
