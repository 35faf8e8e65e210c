import { describe, expect, it } from 'vitest';
import { isTransientSocketError } from './process-guard.js';

describe('isTransientSocketError', () => {
  it('is true for a socket error a killed peer leaves, false for anything else', () => {
    expect(isTransientSocketError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }))).toBe(true);
    expect(isTransientSocketError(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBe(true);
    expect(isTransientSocketError(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBe(false);
    expect(isTransientSocketError(Object.assign(new Error('relation does not exist'), { code: '42P01' }))).toBe(false);
    expect(isTransientSocketError('ECONNRESET')).toBe(false);
  });
});
