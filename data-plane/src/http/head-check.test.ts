import { describe, expect, it } from 'vitest';
import { headProblem } from './head-check.js';

const req = (headers: Record<string, string>) => ({ headers: new Map(Object.entries(headers)) });

describe('headProblem', () => {
  it('accepts one Host, an empty Host, and chunked in any case', () => {
    expect(headProblem(req({ host: 'api.example:8443' }))).toBeNull();
    expect(headProblem(req({ host: '' }))).toBeNull();
    expect(headProblem(req({ host: '[::1]:8443', 'transfer-encoding': ' Chunked ' }))).toBeNull();
  });

  it('refuses two Host lines (joined by the snapshot) and any coding but a single chunked', () => {
    expect(headProblem(req({ host: 'a.example, b.example' }))).toMatch(/more than one Host/);
    for (const te of ['gzip', 'gzip, chunked', 'chunked, chunked', 'chunked, gzip', 'identity', '']) {
      expect(headProblem(req({ host: 'x', 'transfer-encoding': te })), te).toMatch(/Transfer-Encoding/);
    }
  });
});
