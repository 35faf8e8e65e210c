import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UpstreamHealth, type UpstreamState } from './health.js';

describe('UpstreamHealth', () => {
  let changes: string[];
  let h: UpstreamHealth;
  const now = (): number => Date.now();

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'], now: 1_000_000 });
    changes = [];
    h = new UpstreamHealth(
      { failureThreshold: 3, baseOpenMs: 1_000, maxOpenMs: 4_000, probeFailureThreshold: 2 },
      (f: UpstreamState, t: UpstreamState) => changes.push(`${f}->${t}`),
    );
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const fail = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const slot = h.acquire(now());
      h.failure(now(), 'upstream_unavailable', slot?.trial ?? false);
    }
  };

  it('opens after N consecutive failures; a success in between resets the count', () => {
    fail(2);
    h.success(false);
    fail(2);
    expect(h.state(now())).toBe('healthy');
    fail(1);
    expect(h.state(now())).toBe('open');
    expect(h.openUntil).toBe(now() + 1_000);
    expect(h.acquire(now())).toBeNull();
  });

  it('exponential backoff: each failed trial doubles the open period, capped', () => {
    fail(3);
    const periods: number[] = [];
    for (let i = 0; i < 4; i++) {
      periods.push((h.openUntil ?? 0) - now());
      vi.setSystemTime(h.openUntil ?? 0);
      const trial = h.acquire(now());
      expect(trial).toEqual({ trial: true });
      h.failure(now(), 'upstream_failed', true);
    }
    expect(periods).toEqual([1_000, 2_000, 4_000, 4_000]);
  });

  it('half-open lets exactly one trial through; its success closes and resets the backoff', () => {
    fail(3);
    vi.advanceTimersByTime(1_000);
    expect(h.state(now())).toBe('half_open');
    expect(h.acquire(now())).toEqual({ trial: true });
    expect(h.available(now())).toBe(false);
    expect(h.acquire(now())).toBeNull();
    h.success(true);
    expect(h.state(now())).toBe('healthy');
    fail(3);
    expect((h.openUntil ?? 0) - now()).toBe(1_000);
    expect(changes).toEqual(['healthy->open', 'open->half_open', 'half_open->healthy', 'healthy->open']);
  });

  it('a released trial (client abort) frees the slot without deciding', () => {
    fail(3);
    vi.advanceTimersByTime(1_000);
    expect(h.acquire(now())).toEqual({ trial: true });
    h.release(true);
    expect(h.state(now())).toBe('half_open');
    expect(h.acquire(now())).toEqual({ trial: true });
  });

  it('probes: M failures eject; only a passing probe re-admits; a passing probe half-opens an open breaker', () => {
    h.probe(false, now(), 'upstream_unavailable');
    expect(h.state(now())).toBe('healthy');
    h.probe(false, now(), 'upstream_unavailable');
    expect(h.state(now())).toBe('ejected');
    vi.advanceTimersByTime(3_600_000);
    expect(h.available(now())).toBe(false);
    h.probe(true, now(), null);
    expect(h.state(now())).toBe('healthy');
    fail(3);
    h.probe(true, now(), null);
    expect(h.state(now())).toBe('half_open');
    expect(h.lastError).toBe('upstream_unavailable');
    expect(h.requests).toBe(3);
    expect(h.failures).toBe(3);
  });
});
