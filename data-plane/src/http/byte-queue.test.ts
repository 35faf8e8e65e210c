import { describe, expect, it } from 'vitest';
import { ByteQueue } from './byte-queue.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('ByteQueue', () => {
  it('owns a copy of each chunk, so the caller may reuse its buffer', () => {
    const q = new ByteQueue();
    const chunk = bytes('abc');
    q.push(chunk);
    chunk.fill(0);
    expect(text(q.peek(3))).toBe('abc');
  });

  it('peeks across pieces, consumes from the front mid-piece, and keeps length and peak', () => {
    const q = new ByteQueue();
    for (const s of ['ab', 'cde', 'f']) q.push(bytes(s));
    expect(q.length).toBe(6);
    expect(text(q.peek(4))).toBe('abcd');
    q.consume(3);
    expect(q.length).toBe(3);
    expect(text(q.peek(3))).toBe('def');
    q.push(bytes('gh'));
    expect(text(q.peek(5))).toBe('defgh');
    expect(q.peak).toBe(6);
    q.consume(5);
    expect(q.length).toBe(0);
    q.push(bytes('i'));
    expect(text(q.peek(1))).toBe('i');
    q.clear();
    expect(q.length).toBe(0);
    expect(q.peak).toBe(6);
  });
});
