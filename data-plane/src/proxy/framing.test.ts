import { describe, expect, it } from 'vitest';
import { EventFramer } from './framing.js';

function events(f: EventFramer, chunks: string[]): { got: string[]; boundaries: number[] } {
  const got: string[] = [];
  const boundaries = chunks.map((c) => f.push(Buffer.from(c), (b, s, e) => got.push(b.toString('utf8', s, e))));
  return { got, boundaries };
}

describe('EventFramer', () => {
  it('SSE: LF, CRLF and mixed blank lines end events; single line ends do not', () => {
    const { got } = events(new EventFramer('sse', 1024), ['data: a\n\ndata: b\r\n\r\nevent: x\ndata: c\n\r\ndata: d\r\n\n']);
    expect(got).toEqual(['data: a\n\n', 'data: b\r\n\r\n', 'event: x\ndata: c\n\r\n', 'data: d\r\n\n']);
  });

  it('SSE: a terminator split across chunks (LF|LF and CRLF|CRLF and CRLFCR|LF)', () => {
    expect(events(new EventFramer('sse', 1024), ['data: a\n', '\ndata: b']).got).toEqual(['data: a\n\n']);
    expect(events(new EventFramer('sse', 1024), ['data: a\r\n', '\r\n']).got).toEqual(['data: a\r\n\r\n']);
    expect(events(new EventFramer('sse', 1024), ['data: a\r\n\r', '\n']).got).toEqual(['data: a\r\n\r\n']);
    expect(events(new EventFramer('sse', 1024), ['data: a\r', '\n', '\r', '\n']).got).toEqual(['data: a\r\n\r\n']);
  });

  it('returns the offset just past the last complete event and holds the rest', () => {
    const f = new EventFramer('sse', 1024);
    const { boundaries } = events(f, ['data: a\n\ndata: b', '\n\ndata: c']);
    expect(boundaries).toEqual([9, 2]);
    expect(f.held).toBe(7);
    expect(f.atBoundary).toBe(false);
    expect(f.takeHeld()?.toString()).toBe('data: c');
    expect(f.atBoundary).toBe(true);
  });

  it('NDJSON: every LF ends a line', () => {
    const { got } = events(new EventFramer('ndjson', 1024), ['{"a":1}\n{"b"', ':2}\n\n{"c":3}']);
    expect(got).toEqual(['{"a":1}\n', '{"b":2}\n', '\n']);
  });

  it('an event longer than the cap is dropped (and reported) instead of held', () => {
    const f = new EventFramer('ndjson', 8);
    const dropped: string[] = [];
    const got: string[] = [];
    const on = (b: Buffer, s: number, e: number): void => void got.push(b.toString('utf8', s, e));
    f.push(Buffer.from('12345'), on, (d) => dropped.push(Buffer.concat(d).toString()));
    f.push(Buffer.from('67890'), on, (d) => dropped.push(Buffer.concat(d).toString()));
    expect(dropped).toEqual(['1234567890']);
    expect(f.held).toBe(0);
    f.push(Buffer.from('abc\n{"ok":1}\n'), on);
    expect(got).toEqual(['{"ok":1}\n']);
  });
});
