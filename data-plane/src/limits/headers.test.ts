import { describe, expect, it } from 'vitest';
import { formatDuration, rateLimitedError, rateLimitHeaders, retryAfterSeconds } from './headers.js';

describe('formatDuration (OpenAI / Go time.Duration style)', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [Number.NaN, '0s'],
    [0.2, '1ms'],
    [20, '20ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [2040, '2.04s'],
    [59_999, '59.999s'],
    [60_000, '1m0s'],
    [360_000, '6m0s'],
    [361_250, '6m1.25s'],
    [3_600_000, '1h0m0s'],
    [3_723_000, '1h2m3s'],
    [90_000_000, '25h0m0s'],
  ])('%s ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('reports infinity as 0s rather than a nonsense number', () => {
    expect(formatDuration(Infinity)).toBe('0s');
  });
});

describe('retryAfterSeconds', () => {
  it('rounds up to whole seconds and never says 0', () => {
    expect(retryAfterSeconds(0)).toBe(1);
    expect(retryAfterSeconds(1)).toBe(1);
    expect(retryAfterSeconds(1000)).toBe(1);
    expect(retryAfterSeconds(1001)).toBe(2);
    expect(retryAfterSeconds(59_500)).toBe(60);
    expect(retryAfterSeconds(Infinity)).toBe(1);
  });
});

describe('rateLimitHeaders', () => {
  it('lists the six OpenAI headers, requests first, whole non-negative numbers', () => {
    const h = rateLimitHeaders({ limit: 60, remaining: 59.7, resetMs: 1000 }, { limit: 100_000, remaining: -3, resetMs: 360_000 });
    expect(h).toEqual([
      ['x-ratelimit-limit-requests', '60'],
      ['x-ratelimit-remaining-requests', '59'],
      ['x-ratelimit-reset-requests', '1s'],
      ['x-ratelimit-limit-tokens', '100000'],
      ['x-ratelimit-remaining-tokens', '0'],
      ['x-ratelimit-reset-tokens', '6m0s'],
    ]);
  });

  it('builds the 429 with the refusal headers and a reason-specific message', () => {
    const err = rateLimitedError({ reason: 'tokens', scope: 'key', retryAfterSeconds: 7, headers: [['retry-after', '7']] });
    expect(err.status).toBe(429);
    expect(err.code).toBe('rate_limit_exceeded');
    expect(err.headers).toEqual([['retry-after', '7']]);
    expect(err.message).toMatch(/tokens/);
    expect(rateLimitedError({ reason: 'too_large', scope: 'key', retryAfterSeconds: 60, headers: [] }).message).toMatch(/max_tokens/);
    const penalty = { level: 'penalty-3', expiresAt: Date.UTC(2030, 0, 1) };
    const penalized = rateLimitedError({ reason: 'too_large', scope: 'key', retryAfterSeconds: 60, headers: [] }, penalty);
    expect(penalized.message).toBe('Rate limit exceeded: this API key is restricted (penalty-3) until 2030-01-01T00:00:00.000Z.');
    // The account's limit is not the penalty's doing: say which limit it was.
    const byAccount = rateLimitedError({ reason: 'requests', scope: 'account', retryAfterSeconds: 3, headers: [] }, penalty);
    expect(byAccount.message).toMatch(/too many requests for this API key's account \(the limit applies to all its keys together\)/);
  });
});
