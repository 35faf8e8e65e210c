import { describe, expect, it } from 'vitest';
import { decodePacked, encodePacked, PACKED_KEY_FIELDS, PACKED_KEY_MAX_FROM, PACKED_SHARDS, packedShardOf } from './packed-windows.js';
import { USAGE_FIELDS } from './usage.js';

describe('packed windows', () => {
  it('round-trips counters and refuses anything else', () => {
    expect(decodePacked(encodePacked([3, 0, 1, 4900, 57, 4000]), 6)).toEqual([3, 0, 1, 4900, 57, 4000]);
    for (const bad of ['', '1,2', '1,,2,3,4,5', '-1,0,0,0,0,0', '1.5,0,0,0,0,0', 'a,b,c,d,e,f', '1,2,3,4,5,6,7'])
      expect(decodePacked(bad, 6), bad).toBeNull();
  });
  it('spreads uuid key ids evenly over the shards, the same way every time', () => {
    const counts = new Array<number>(PACKED_SHARDS).fill(0);
    for (let i = 0; i < 16_000; i++) counts[packedShardOf(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)]!++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1200);
    expect(packedShardOf('203.0.113.9')).toBe(packedShardOf('203.0.113.9'));
  });
  it('packs exactly the fields the detectors read, the largest prompt last (max-merged)', () => {
    expect(PACKED_KEY_FIELDS[PACKED_KEY_MAX_FROM]).toBe(USAGE_FIELDS.maxPromptTokens);
    expect(PACKED_KEY_FIELDS.length).toBe(PACKED_KEY_MAX_FROM + 1);
  });
});
