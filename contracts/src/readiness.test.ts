import { describe, expect, it } from 'vitest';
import { failureReason, ReadinessFailure } from './readiness.js';

const withCode = (code: unknown, message: string) => Object.assign(new Error(message), { code });

describe('failureReason', () => {
  it('names the kind of failure from the error code, never the driver’s text', () => {
    expect(failureReason(withCode('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.7:5432'))).toBe('connection refused');
    expect(failureReason(withCode('28P01', 'password authentication failed for user "fluxgate"'))).toBe('authentication failed');
    expect(failureReason(withCode('ENOTFOUND', 'getaddrinfo ENOTFOUND db.internal'))).toBe('host name does not resolve');
    expect(failureReason(withCode('XX000', 'internal error at 10.1.1.1'))).toBe('error XX000');
    expect(failureReason(withCode('weird code with 10.0.0.1', 'x'))).toBe('error');
    expect(failureReason(new Error('Stream isn’t writeable at redis://:secret@10.0.0.8'))).toBe('error');
    expect(failureReason('a string')).toBe('error');
    expect(failureReason(null)).toBe('error');
  });
  it('keeps the wording of a failure the check itself described', () => {
    expect(failureReason(new ReadinessFailure('not connected (reconnecting)'))).toBe('not connected (reconnecting)');
  });
});
