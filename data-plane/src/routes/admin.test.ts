import { describe, expect, it } from 'vitest';
import { bearerMatches } from './admin.js';

describe('admin bearer check', () => {
  const token = 'a-very-long-admin-token-value';
  it('accepts the exact token', () => expect(bearerMatches(`Bearer ${token}`, token)).toBe(true));
  it('is case-insensitive on the scheme only', () => {
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`Bearer ${token.toUpperCase()}`, token)).toBe(false);
  });
  it('rejects missing, other schemes, prefixes and extensions', () => {
    expect(bearerMatches(undefined, token)).toBe(false);
    expect(bearerMatches(`Basic ${token}`, token)).toBe(false);
    expect(bearerMatches(`Bearer ${token.slice(0, -1)}`, token)).toBe(false);
    expect(bearerMatches(`Bearer ${token}x`, token)).toBe(false);
    expect(bearerMatches('Bearer ', token)).toBe(false);
  });
});
