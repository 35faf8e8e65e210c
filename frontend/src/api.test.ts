import { describe, expect, it } from 'vitest';
import { ApiError, parseRetryAfter } from './api.js';

describe('Retry-After (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  it('reads delay-seconds and HTTP-dates, at least one second', () => {
    expect(parseRetryAfter('12', now)).toBe(12);
    expect(parseRetryAfter('0', now)).toBe(1);
    expect(parseRetryAfter('Mon, 07 Dec 2026 12:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Mon, 07 Dec 2026 11:00:00 GMT', now)).toBe(1);
  });
  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(null, now)).toBeNull();
    expect(parseRetryAfter('', now)).toBeNull();
    expect(parseRetryAfter('soon', now)).toBeNull();
  });
});

describe('ApiError', () => {
  it('names the field of a validation message and strips it from the detail', () => {
    const e = new ApiError(400, 'bad_request', 'name: must not contain control characters');
    expect(e.field).toBe('name');
    expect(e.detail).toBe('must not contain control characters');
    expect(new ApiError(401, 'invalid_credentials', 'Invalid email or password.').field).toBeNull();
  });
});
