import { describe, expect, it } from 'vitest';
import { createConcurrencyGate } from './concurrency.js';

describe('concurrency gate', () => {
  it('caps the replica and releases', () => {
    const g = createConcurrencyGate(2);
    expect(g.tryAcquireGlobal()).toBe(true);
    expect(g.tryAcquireGlobal()).toBe(true);
    expect(g.tryAcquireGlobal()).toBe(false);
    g.releaseGlobal();
    expect(g.tryAcquireGlobal()).toBe(true);
    expect(g.open).toBe(2);
  });
  it('caps each key independently and forgets idle keys', () => {
    const g = createConcurrencyGate(100);
    expect(g.tryAcquireKey('a', 1)).toBe(true);
    expect(g.tryAcquireKey('a', 1)).toBe(false);
    expect(g.tryAcquireKey('b', 1)).toBe(true);
    g.releaseKey('a');
    expect(g.openFor('a')).toBe(0);
    expect(g.tryAcquireKey('a', 1)).toBe(true);
  });
  it('never goes negative on double release', () => {
    const g = createConcurrencyGate(1);
    g.releaseGlobal();
    expect(g.open).toBe(0);
    g.releaseKey('x');
    expect(g.openFor('x')).toBe(0);
  });
});
