import { describe, expect, it } from 'vitest';
import { AccumulatorTable } from './accumulators.js';
import type { PendingBucket } from './buckets.js';
import { normaliseIp, type UsageSample } from './counters.js';

const sample = (clientIp: string): UsageSample => ({
  status: 200,
  promptTokens: 10,
  completionTokens: 5,
  estimated: false,
  requestBytes: 1,
  responseBytes: 1,
  ttfbMs: 1,
  durationMs: 1,
  clientIp,
  model: 'm',
  promptFingerprint: null,
  streamed: false,
  cut: false,
  upstreamError: false,
});

describe('accumulator table', () => {
  it('keeps an owner accumulator for reuse across one fold, and drops it after an idle interval', () => {
    const table = new AccumulatorTable(normaliseIp);
    const pending = new Map<string, PendingBucket>();
    const at = Date.now();
    table.record('k1', sample('::ffff:10.0.0.1'), at);
    table.record('k2', sample('10.0.0.1'), at);
    // k1, k2, and the address under both spellings.
    expect(table.owners).toBe(4);
    expect(table.fold(pending)).toBe(3);
    expect(pending.size).toBe(9); // k1, k2, 10.0.0.1 × 3 windows
    expect(table.owners).toBe(4);

    table.record('k1', sample('10.0.0.1'), at + 1);
    expect(table.opened).toBe(1); // reused, opened again for this interval
    expect(table.fold(pending)).toBe(2); // k1's and the address's
    expect(table.owners).toBe(3); // k2 sat out an interval; the address (both spellings) did not
    expect(pending.get(`key\u0000k1\u0000h1\u0000${Math.floor(at / 3_600_000)}`)?.sums.get('req')).toBe(2);

    expect(table.fold(pending)).toBe(0);
    expect(table.owners).toBe(0);
  });
});
