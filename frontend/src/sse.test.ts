import { describe, expect, it } from 'vitest';
import { interpretChatEvent } from './chat-stream.js';
import { createSseParser, type SseEvent } from './sse.js';

function collect() {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = createSseParser({ onEvent: (e) => events.push(e), onComment: (c) => comments.push(c), onRetry: (ms) => retries.push(ms) });
  return { parser, events, comments, retries };
}

/** Every way of cutting `text` into two pieces, fed as text. */
function everySplit(text: string): SseEvent[][] {
  const results: SseEvent[][] = [];
  for (let i = 0; i <= text.length; i++) {
    const { parser, events } = collect();
    parser.push(text.slice(0, i));
    parser.push(text.slice(i));
    parser.end();
    results.push(events);
  }
  return results;
}

const enc = new TextEncoder();

describe('SSE parser (WHATWG HTML §9.2.6)', () => {
  it('parses one event and an OpenAI stream end', () => {
    const { parser, events } = collect();
    parser.push('data: {"a":1}\n\ndata: [DONE]\n\n');
    expect(events).toEqual([
      { event: 'message', data: '{"a":1}', id: '' },
      { event: 'message', data: '[DONE]', id: '' },
    ]);
  });

  it('gives the same events wherever a chunk boundary falls', () => {
    const stream = 'event: delta\nid: 7\ndata: first line\ndata: second line\n\n: keep-alive\ndata: {"x":"é"}\n\ndata: [DONE]\n\n';
    const expected = [
      { event: 'delta', data: 'first line\nsecond line', id: '7' },
      { event: 'message', data: '{"x":"é"}', id: '7' },
      { event: 'message', data: '[DONE]', id: '7' },
    ];
    for (const events of everySplit(stream)) expect(events).toEqual(expected);
  });

  it('delivers nothing until the blank line that ends the event', () => {
    const { parser, events } = collect();
    parser.push('data: hel');
    parser.push('lo\n');
    expect(events).toEqual([]);
    parser.push('\n');
    expect(events).toEqual([{ event: 'message', data: 'hello', id: '' }]);
  });

  it('joins multi-line data with LF and keeps empty data lines', () => {
    const { parser, events } = collect();
    parser.push('data: one\ndata:\ndata:  three (two spaces, one kept)\n\n');
    expect(events[0]!.data).toBe('one\n\n three (two spaces, one kept)');
  });

  it('ignores comments (keep-alives) but reports them', () => {
    const { parser, events, comments } = collect();
    parser.push(': ping\n\n:another\ndata: x\n\n');
    expect(events).toEqual([{ event: 'message', data: 'x', id: '' }]);
    expect(comments).toEqual(['ping', 'another']);
  });

  it('accepts CRLF, CR and LF line ends, including a CRLF split between chunks', () => {
    const crlf = 'data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n';
    for (const events of everySplit(crlf)) {
      expect(events).toEqual([
        { event: 'message', data: 'a\nb', id: '' },
        { event: 'message', data: 'c', id: '' },
      ]);
    }
    const { parser, events } = collect();
    parser.push('data: cr\r\rdata: mixed\r\n\n');
    expect(events.map((e) => e.data)).toEqual(['cr', 'mixed']);
  });

  it('does not read a lone CR at a chunk end followed by a blank line as one line end', () => {
    // "data: x\r" + "\n\n": CRLF then LF — one event. "data: x\r" + "\r": two line ends — one event too.
    for (const rest of ['\n\n', '\r']) {
      const { parser, events } = collect();
      parser.push('data: x\r');
      parser.push(rest);
      expect(events).toEqual([{ event: 'message', data: 'x', id: '' }]);
    }
  });

  it('decodes UTF-8 split inside a multi-byte character', () => {
    const bytes = enc.encode('data: {"t":"naïve 🚀"}\n\n');
    for (let i = 0; i <= bytes.length; i++) {
      const { parser, events } = collect();
      parser.feedBytes(bytes.subarray(0, i));
      parser.feedBytes(bytes.subarray(i));
      parser.end();
      expect(events).toEqual([{ event: 'message', data: '{"t":"naïve 🚀"}', id: '' }]);
    }
  });

  it('one byte at a time gives the same events', () => {
    const bytes = enc.encode('\ufeffdata: a\r\n\r\nevent: error\ndata: {"error":{"message":"cut"}}\n\n');
    const { parser, events } = collect();
    for (const b of bytes) parser.feedBytes(Uint8Array.of(b));
    parser.end();
    expect(events).toEqual([
      { event: 'message', data: 'a', id: '' },
      { event: 'error', data: '{"error":{"message":"cut"}}', id: '' },
    ]);
  });

  it('handles fields without a colon or value, unknown fields, retry and ids', () => {
    const { parser, events, retries } = collect();
    parser.push('data\n\nfoo: bar\nretry: 1500\nretry: soon\nid: 9\ndata: y\n\nid: bad\u0000id\ndata: z\n\n');
    expect(events).toEqual([
      { event: 'message', data: '', id: '' },
      { event: 'message', data: 'y', id: '9' },
      { event: 'message', data: 'z', id: '9' },
    ]);
    expect(retries).toEqual([1500]);
  });

  it('drops an event with no data, and the event type does not leak into the next event', () => {
    const { parser, events } = collect();
    parser.push('event: ping\n\ndata: after\n\n');
    expect(events).toEqual([{ event: 'message', data: 'after', id: '' }]);
  });

  it('discards a truncated last event at the end of the stream', () => {
    const { parser, events } = collect();
    parser.push('data: complete\n\ndata: trunc');
    parser.end();
    expect(events.map((e) => e.data)).toEqual(['complete']);
  });
});

describe('chat stream events', () => {
  const ev = (data: string, event = 'message'): SseEvent => ({ event, data, id: '' });

  it('reads text deltas, usage and [DONE]', () => {
    expect(interpretChatEvent(ev('{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'))).toEqual([]);
    expect(interpretChatEvent(ev('{"choices":[{"index":0,"delta":{"content":"Hel"}}]}'))).toEqual([{ kind: 'text', text: 'Hel' }]);
    expect(interpretChatEvent(ev('{"choices":[{"text":"lo","index":0}]}'))).toEqual([{ kind: 'text', text: 'lo' }]);
    expect(interpretChatEvent(ev('{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}'))).toEqual([
      { kind: 'usage', promptTokens: 9, completionTokens: 3 },
    ]);
    expect(interpretChatEvent(ev('[DONE]'))).toEqual([{ kind: 'done' }]);
  });

  it("reads the gateway's in-stream error event", () => {
    const items = interpretChatEvent(
      ev('{"error":{"message":"Rate limit exceeded.","type":"rate_limit_error","code":"rate_limit_exceeded"}}'),
    );
    expect(items).toEqual([{ kind: 'error', message: 'Rate limit exceeded.', code: 'rate_limit_exceeded' }]);
  });

  it('reports an event that is not JSON instead of throwing', () => {
    expect(interpretChatEvent(ev('{not json'))).toEqual([
      { kind: 'error', message: 'The stream sent an event that is not JSON.', code: null },
    ]);
  });
});
