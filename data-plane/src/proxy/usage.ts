/**
 * Usage tracking on a response body as it streams: fed each upstream chunk, it returns the bytes
 * to forward and, at the end, the prompt/completion tokens.
 *
 * Usage is parsed off to the side: unless something must be withheld, the chunk handed in is the
 * chunk handed back (no copy, never re-serialised). Withholding happens only when the injected
 * `stream_options.include_usage` event has to be stripped, or when the caller asks for whole
 * events (to be able to stop a stream at an event boundary): then only complete events are
 * forwarded and a partial one is held, up to `maxEventBytes`; past that the tracker falls back
 * to passthrough for the rest of the stream (memory stays bounded, the stripping stops).
 */
import { EventFramer } from './framing.js';
import {
  EVAL_COUNT_KEY,
  scanChunk,
  sseData,
  tryParse,
  USAGE_KEY,
  usageFromObject,
  usageFromTail,
  usageObjectAt,
  type Needle,
  type Reported,
} from './usage-scan.js';

export type ResponseFormat = 'sse' | 'ndjson' | 'json' | 'opaque';

export interface UsageResult {
  promptTokens: number;
  completionTokens: number;
  /** True when any part came from the byte estimate rather than the upstream. */
  estimated: boolean;
}

export interface UsageTrackerOptions {
  /** Response Content-Type and Content-Encoding. */
  contentType: string | null;
  contentEncoding?: string | null;
  /** The request's prompt text, for the estimate when the upstream reports nothing. */
  promptText: string;
  /** Remove the usage-only event (`choices: []` + `usage`) that include_usage injection added. */
  stripInjectedUsage?: boolean;
  /** Forward only complete SSE events / NDJSON lines, so output always ends at a boundary. */
  wholeEvents?: boolean;
  /** Longest partial event held (default 1 MiB). */
  maxEventBytes?: number;
}

export interface UsageTracker {
  readonly format: ResponseFormat;
  /**
   * The bytes to forward for this chunk: the same object when nothing is withheld, otherwise
   * possibly a view of it — like the chunk, valid only until the caller returns.
   */
  push(chunk: Uint8Array): Uint8Array;
  /** Bytes still held at the end of the body (forward them before ending). */
  end(): Uint8Array;
  /** Completion tokens so far: the upstream's count once reported, else the estimate. */
  readonly completionTokens: number;
  /** Everything forwarded so far ends at an event boundary (always, with `wholeEvents`). */
  readonly atEventBoundary: boolean;
  result(): UsageResult;
}

/** ≈ bytes per token for English text with common tokenizers (OpenAI's rule of thumb). */
export const BYTES_PER_TOKEN = 4;
const JSON_TAIL_BYTES = 64 * 1024;
const EMPTY = new Uint8Array(0);

export function responseFormat(contentType: string | null, contentEncoding?: string | null): ResponseFormat {
  // A compressed body cannot be read on the side; RFC 9110 §8.4.
  if (contentEncoding && contentEncoding.trim().toLowerCase() !== 'identity') return 'opaque';
  if (contentType === null) return 'opaque';
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === 'text/event-stream') return 'sse';
  if (type === 'application/x-ndjson' || type === 'application/ndjson' || type === 'application/jsonl') return 'ndjson';
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  return 'opaque';
}

export function createUsageTracker(opts: UsageTrackerOptions): UsageTracker {
  return new Tracker(opts);
}

type Segment = [buf: Buffer, start: number, end: number];

class Tracker implements UsageTracker {
  readonly format: ResponseFormat;
  readonly #promptText: string;
  readonly #framer: EventFramer | null;
  #strip: boolean;
  #whole: boolean;
  #reported: Reported | null = null;
  #textBytes = 0;
  /** Last bytes of a JSON body, where its usage is. */
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #out: Segment[] = [];
  readonly #needle: Needle;
  /** The chunk being pushed, the offsets of needles in it, and the next one to consider. */
  #chunk: Buffer | null = null;
  readonly #needles: number[] = [];
  #nextNeedle = 0;

  constructor(o: UsageTrackerOptions) {
    this.format = responseFormat(o.contentType, o.contentEncoding);
    this.#promptText = o.promptText;
    const framed = this.format === 'sse' || this.format === 'ndjson';
    this.#framer = framed ? new EventFramer(this.format as 'sse' | 'ndjson', o.maxEventBytes ?? 1024 * 1024) : null;
    this.#strip = this.format === 'sse' && o.stripInjectedUsage === true;
    this.#whole = framed && (this.#strip || o.wholeEvents === true);
    this.#needle = this.format === 'ndjson' ? 'eval_count' : 'usage';
  }

  get completionTokens(): number {
    return this.#reported?.completion ?? Math.ceil(this.#textBytes / BYTES_PER_TOKEN);
  }

  get atEventBoundary(): boolean {
    return this.#framer !== null && (this.#whole || this.#framer.atBoundary);
  }

  push(chunk: Uint8Array): Uint8Array {
    if (this.format === 'opaque') return chunk;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#needles.length = 0;
    this.#nextNeedle = 0;
    this.#textBytes += scanChunk(buf, this.#needle, this.#needles);
    if (this.#framer === null) {
      this.#keepTail(buf);
      return chunk;
    }
    // #chunk only marks "the chunk being scanned"; holding it past this call would pin the
    // chunk's whole backing buffer (undici hands out views of buffers up to megabytes long).
    this.#chunk = buf;
    try {
      if (!this.#whole) {
        this.#framer.push(buf, this.#onSideEvent);
        return chunk;
      }
      this.#out = [];
      this.#framer.push(buf, this.#onWholeEvent, this.#onOverflow);
      return this.#output(buf, chunk);
    } finally {
      this.#chunk = null;
    }
  }

  end(): Uint8Array {
    if (this.format === 'json') {
      const r = usageFromTail(Buffer.concat(this.#tail));
      if (r !== null) this.#reported = r;
      this.#tail = [];
      return EMPTY;
    }
    const held = this.#framer?.takeHeld() ?? null;
    if (held === null) return EMPTY;
    // An unterminated last event: still read for usage; forwarded if it was withheld.
    this.#chunk = null;
    const keep = this.#inspect(held, 0, held.length);
    return this.#whole && keep ? held : EMPTY;
  }

  result(): UsageResult {
    const r = this.#reported;
    const prompt = r?.prompt ?? null;
    const completion = r?.completion ?? null;
    return {
      promptTokens: prompt ?? Math.ceil(Buffer.byteLength(this.#promptText) / BYTES_PER_TOKEN),
      completionTokens: completion ?? Math.ceil(this.#textBytes / BYTES_PER_TOKEN),
      estimated: prompt === null || completion === null,
    };
  }

  readonly #onSideEvent = (buf: Buffer, start: number, end: number): void => {
    this.#inspect(buf, start, end);
  };

  readonly #onWholeEvent = (buf: Buffer, start: number, end: number): void => {
    if (this.#inspect(buf, start, end)) this.#append(buf, start, end);
  };

  /** Past the cap: forward what was held and stop withholding for the rest of the stream. */
  readonly #onOverflow = (dropped: readonly Buffer[]): void => {
    this.#whole = false;
    this.#strip = false;
    for (const d of dropped) this.#append(d, 0, d.length);
  };

  /** Reads usage from an event; returns false when the event must not be forwarded. */
  #inspect(buf: Buffer, start: number, end: number): boolean {
    if (!this.#hasNeedle(buf, start, end)) return true;
    const text = this.format === 'sse' ? sseData(buf, start, end) : buf.toString('utf8', start, end);
    if (text === null) return true;
    const obj = tryParse(text);
    const r = usageFromObject(obj);
    if (r === null) return true;
    this.#reported = r;
    const choices = (obj as { choices?: unknown }).choices;
    return !(this.#strip && Array.isArray(choices) && choices.length === 0);
  }

  /** Whether the event carries a usage object (SSE) or Ollama's counts (NDJSON). */
  #hasNeedle(buf: Buffer, start: number, end: number): boolean {
    if (buf === this.#chunk) {
      // Events of one chunk arrive in order: walk the needles found by the chunk's scan.
      const n = this.#needles;
      while (this.#nextNeedle < n.length && (n[this.#nextNeedle] as number) < start) this.#nextNeedle++;
      return this.#nextNeedle < n.length && (n[this.#nextNeedle] as number) < end;
    }
    // An event assembled across chunks (or held at the end): search it whole.
    const sse = this.format === 'sse';
    const at = buf.subarray(start, end).indexOf(sse ? USAGE_KEY : EVAL_COUNT_KEY);
    return at !== -1 && (!sse || usageObjectAt(buf, start + at, end));
  }

  #append(buf: Buffer, start: number, end: number): void {
    const last = this.#out[this.#out.length - 1];
    if (last !== undefined && last[0] === buf && last[2] === start) last[2] = end;
    else this.#out.push([buf, start, end]);
  }

  #output(buf: Buffer, chunk: Uint8Array): Uint8Array {
    const out = this.#out;
    this.#out = [];
    if (out.length === 0) return EMPTY;
    const first = out[0] as Segment;
    if (out.length === 1) {
      if (first[0] === buf && first[1] === 0 && first[2] === buf.length) return chunk;
      return first[0].subarray(first[1], first[2]);
    }
    return Buffer.concat(out.map(([b, s, e]) => b.subarray(s, e)));
  }

  #keepTail(buf: Buffer): void {
    const piece = buf.length > JSON_TAIL_BYTES ? buf.subarray(buf.length - JSON_TAIL_BYTES) : buf;
    this.#tail.push(Buffer.from(piece));
    this.#tailBytes += piece.length;
    while (this.#tail.length > 1 && this.#tailBytes - (this.#tail[0] as Buffer).length >= JSON_TAIL_BYTES) {
      this.#tailBytes -= (this.#tail.shift() as Buffer).length;
    }
  }
}
