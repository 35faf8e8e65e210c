import { describe, expect, it } from 'vitest';
import { createUsageTracker, responseFormat, type UsageTrackerOptions } from './usage.js';

const SSE = 'text/event-stream; charset=utf-8';
const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm' };
const chunkEvent = (content: string, usageNull: boolean): string =>
  `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }], ...(usageNull ? { usage: null } : {}) })}\n\n`;
const USAGE_EVENT = `data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14, completion_tokens_details: { reasoning_tokens: 0 } } })}\n\n`;
const DONE = 'data: [DONE]\n\n';

/** An OpenAI stream as sent when include_usage is set, and the same minus the usage event. */
function openaiStream(eol: '\n' | '\r\n' = '\n'): { upstream: Buffer; client: Buffer } {
  const fix = (s: string): string => s.replaceAll('\n', eol);
  const content = [': keep-alive comment\n\n', chunkEvent('Hello', true), chunkEvent(' wor\\"ld', true), chunkEvent('!', true)]
    .map(fix)
    .join('');
  return { upstream: Buffer.from(content + fix(USAGE_EVENT) + fix(DONE)), client: Buffer.from(content + fix(DONE)) };
}

/** Feeds `input` cut at the given offsets; returns everything the tracker let through. */
function run(opts: UsageTrackerOptions, input: Buffer, cuts: number[]) {
  const t = createUsageTracker(opts);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, input.length]) {
    out.push(Buffer.from(t.push(input.subarray(prev, c))));
    prev = c;
  }
  out.push(Buffer.from(t.end()));
  return { tracker: t, output: Buffer.concat(out), result: t.result() };
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

describe('usage tracker: OpenAI SSE', () => {
  const sse = { contentType: SSE, promptText: 'Say hello' };

  it('passthrough returns the very chunk objects it was given and reads the usage', () => {
    const { upstream } = openaiStream();
    const t = createUsageTracker(sse);
    const a = upstream.subarray(0, 100);
    const b = upstream.subarray(100);
    expect(t.push(a)).toBe(a);
    expect(t.push(b)).toBe(b);
    expect(t.end().length).toBe(0);
    expect(t.result()).toEqual({ promptTokens: 11, completionTokens: 3, estimated: false });
  });

  for (const eol of ['\n', '\r\n'] as const) {
    it(`split at every byte offset (${JSON.stringify(eol)}): passthrough bytes unchanged, usage found`, () => {
      const { upstream } = openaiStream(eol);
      for (let i = 0; i <= upstream.length; i++) {
        const { output, result } = run(sse, upstream, [i]);
        expect(output.equals(upstream), `cut ${i}`).toBe(true);
        expect(result, `cut ${i}`).toEqual({ promptTokens: 11, completionTokens: 3, estimated: false });
      }
    });

    it(`split at every byte offset (${JSON.stringify(eol)}): stripping removes exactly the usage event`, () => {
      const { upstream, client } = openaiStream(eol);
      for (let i = 0; i <= upstream.length; i++) {
        const { output, result, tracker } = run({ ...sse, stripInjectedUsage: true }, upstream, [i]);
        expect(output.toString(), `cut ${i}`).toBe(client.toString());
        expect(result.completionTokens).toBe(3);
        expect(tracker.atEventBoundary).toBe(true);
      }
    });
  }

  it('random multi-way splits, including one-byte chunks, with and without stripping', () => {
    const { upstream, client } = openaiStream('\r\n');
    const rand = rng(42);
    for (let iter = 0; iter < 400; iter++) {
      const cuts: number[] = [];
      for (let p = 0; p < upstream.length; p += 1 + Math.floor(rand() * (iter % 2 === 0 ? 3 : 40))) cuts.push(p);
      expect(run(sse, upstream, cuts).output.equals(upstream)).toBe(true);
      const stripped = run({ ...sse, stripInjectedUsage: true }, upstream, cuts);
      expect(stripped.output.equals(client), `iteration ${iter}`).toBe(true);
      expect(stripped.result.estimated).toBe(false);
    }
  });

  it('a chunk holding many whole events is forwarded as is when nothing is stripped', () => {
    const events = Buffer.from(chunkEvent('a', false).repeat(50));
    const t = createUsageTracker({ ...sse, stripInjectedUsage: true });
    expect(t.push(events)).toBe(events);
  });

  it('`"usage":null` chunks are not usage; no usage at all means an estimate from bytes', () => {
    const body = Buffer.from(chunkEvent('Hello world!', true).repeat(3) + DONE);
    const { result, output } = run({ contentType: SSE, promptText: 'x'.repeat(40) }, body, [17]);
    expect(output.equals(body)).toBe(true);
    expect(result).toEqual({ promptTokens: 10, completionTokens: 9, estimated: true });
  });

  it('running completion estimate grows with the text and is replaced by the reported count', () => {
    const t = createUsageTracker(sse);
    t.push(Buffer.from(chunkEvent('12345678', false)));
    expect(t.completionTokens).toBe(2);
    t.push(Buffer.from(USAGE_EVENT));
    expect(t.completionTokens).toBe(3);
  });

  it('atEventBoundary tells whether forwarded bytes end between events', () => {
    const ev = Buffer.from(chunkEvent('x', false));
    const pass = createUsageTracker(sse);
    pass.push(ev.subarray(0, 10));
    expect(pass.atEventBoundary).toBe(false);
    pass.push(ev.subarray(10));
    expect(pass.atEventBoundary).toBe(true);
    const whole = createUsageTracker({ ...sse, wholeEvents: true });
    expect(whole.push(ev.subarray(0, 10)).length).toBe(0);
    expect(whole.atEventBoundary).toBe(true);
    expect(Buffer.from(whole.push(ev.subarray(10))).equals(ev)).toBe(true);
  });

  it('an unterminated event longer than the cap falls back to passthrough with bounded memory', () => {
    const t = createUsageTracker({ ...sse, stripInjectedUsage: true, maxEventBytes: 1024 });
    const first = Buffer.from(chunkEvent('a', false));
    expect(t.push(first)).toBe(first);
    const part = Buffer.from(`data: {"x":"${'y'.repeat(600)}`);
    expect(t.push(part).length).toBe(0);
    const more = Buffer.from('z'.repeat(600));
    // Over the cap: the held part and this chunk go out together, then everything passes through.
    expect(Buffer.from(t.push(more)).equals(Buffer.concat([part, more]))).toBe(true);
    const rest = Buffer.from(`"}\n\n${USAGE_EVENT}${DONE}`);
    expect(t.push(rest)).toBe(rest);
    expect(t.end().length).toBe(0);
    expect(t.result().completionTokens).toBe(3);
  });

  it('Responses API usage nested under `response`', () => {
    const body = Buffer.from(
      'event: response.completed\ndata: {"type":"response.completed","response":{"usage":{"input_tokens":5,"output_tokens":7}}}\n\n',
    );
    expect(run(sse, body, [30]).result).toEqual({ promptTokens: 5, completionTokens: 7, estimated: false });
  });
});

describe('usage tracker: Ollama NDJSON and JSON bodies', () => {
  const lines = [
    '{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":"The"},"done":false}\n',
    '{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":" sky"},"done":false}\n',
    '{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":""},"done_reason":"stop","done":true,"total_duration":1,"prompt_eval_count":26,"prompt_eval_duration":1,"eval_count":2,"eval_duration":1}\n',
  ];
  const nd = Buffer.from(lines.join(''));

  it('NDJSON: counts from the final done line, at every split', () => {
    for (let i = 0; i <= nd.length; i++) {
      const { output, result } = run({ contentType: 'application/x-ndjson', promptText: '' }, nd, [i]);
      expect(output.equals(nd)).toBe(true);
      expect(result, `cut ${i}`).toEqual({ promptTokens: 26, completionTokens: 2, estimated: false });
    }
  });

  it('NDJSON without counts: estimated from the generated text', () => {
    const body = Buffer.from(lines.slice(0, 2).join(''));
    expect(run({ contentType: 'application/x-ndjson', promptText: 'abcdefgh' }, body, []).result).toEqual({
      promptTokens: 2,
      completionTokens: 2,
      estimated: true,
    });
  });

  it('OpenAI JSON: usage read from the body, chunks passed through untouched', () => {
    const body = Buffer.from(
      JSON.stringify({
        id: 'c',
        choices: [{ message: { role: 'assistant', content: 'Hi "usage": {' } }],
        usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 },
      }),
    );
    for (const cut of [1, 40, body.length - 5]) {
      const { output, result } = run({ contentType: 'application/json', promptText: '' }, body, [cut]);
      expect(output.equals(body)).toBe(true);
      expect(result).toEqual({ promptTokens: 9, completionTokens: 12, estimated: false });
    }
  });

  it('JSON bodies far larger than the kept tail still yield the usage at their end', () => {
    const body = Buffer.from(
      JSON.stringify({
        data: [{ embedding: Array.from({ length: 40_000 }, (_, i) => i / 7) }],
        usage: { prompt_tokens: 8, total_tokens: 8 },
      }),
    );
    const cuts = Array.from({ length: Math.floor(body.length / 16_384) }, (_, i) => (i + 1) * 16_384);
    expect(run({ contentType: 'application/json', promptText: '' }, body, cuts).result).toEqual({
      promptTokens: 8,
      completionTokens: 0,
      estimated: false,
    });
  });

  it('Ollama JSON answer', () => {
    const body = Buffer.from('{"model":"m","response":"Hello","done":true,"prompt_eval_count":4,"eval_count":1}');
    expect(run({ contentType: 'application/json; charset=utf-8', promptText: '' }, body, [10]).result).toEqual({
      promptTokens: 4,
      completionTokens: 1,
      estimated: false,
    });
  });

  it('compressed or unknown bodies pass through and are estimated from the prompt only', () => {
    const body = Buffer.from([0x1f, 0x8b, 0x08, 0, 1, 2, 3]);
    const { output, result, tracker } = run({ contentType: 'application/json', contentEncoding: 'gzip', promptText: 'abcd' }, body, [3]);
    expect(tracker.format).toBe('opaque');
    expect(output.equals(body)).toBe(true);
    expect(result).toEqual({ promptTokens: 1, completionTokens: 0, estimated: true });
  });
});

describe('responseFormat', () => {
  it('by content type and encoding', () => {
    expect(responseFormat('text/event-stream')).toBe('sse');
    expect(responseFormat('application/x-ndjson')).toBe('ndjson');
    expect(responseFormat('application/json; charset=utf-8')).toBe('json');
    expect(responseFormat('application/problem+json')).toBe('json');
    expect(responseFormat('audio/mpeg')).toBe('opaque');
    expect(responseFormat(null)).toBe('opaque');
    expect(responseFormat('text/event-stream', 'br')).toBe('opaque');
    expect(responseFormat('text/event-stream', 'identity')).toBe('sse');
  });
});
