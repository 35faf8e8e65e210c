/**
 * Event boundaries in a byte stream: SSE events (WHATWG HTML §9.2.6: an event ends at an empty
 * line; lines end in CRLF, LF or CR) and NDJSON lines (one JSON text per LF-terminated line).
 *
 * Boundaries are found with native `indexOf(LF)` only. An SSE event ends at an LF whose line is
 * empty: the byte before it is LF (`\n\n`, `\r\n\n`) or it is CR preceded by LF (`\n\r\n`,
 * `\r\n\r\n`). Streams that end lines with a bare CR are not split (no model server emits them);
 * their bytes still pass through unchanged.
 *
 * An event that spans chunks is held as copies (chunks are only valid during the call) and
 * handed over whole once complete; holding is capped, and an event over the cap is dropped.
 */
const LF = 0x0a;
const CR = 0x0d;

export type FrameKind = 'sse' | 'ndjson';

/** A complete event: `buf[start, end)`, terminator included. Valid only during the call. */
export type EventCallback = (buf: Buffer, start: number, end: number) => void;

/** The held bytes of an event that exceeded the cap (views valid only during the call). */
export type OverflowCallback = (dropped: readonly Buffer[]) => void;

export class EventFramer {
  readonly kind: FrameKind;
  readonly maxEventBytes: number;
  #pieces: Buffer[] = [];
  #held = 0;
  #skipping = false;
  /** The last two bytes fed, for terminators split across chunks (-1: none). */
  #prev1 = -1;
  #prev2 = -1;

  constructor(kind: FrameKind, maxEventBytes: number) {
    this.kind = kind;
    this.maxEventBytes = maxEventBytes;
  }

  /** Bytes of the incomplete current event held so far. */
  get held(): number {
    return this.#held;
  }

  /** Whether everything fed so far ends exactly at an event boundary. */
  get atBoundary(): boolean {
    return this.#held === 0 && !this.#skipping;
  }

  /**
   * Feeds one chunk: `onEvent` for each event completed by it, in order; `onOverflow` when the
   * incomplete tail would exceed the cap (its bytes are then dropped and the rest of that event
   * skipped). Returns the offset in `chunk` just past the last completed event (0 if none).
   */
  push(chunk: Buffer, onEvent: EventCallback, onOverflow?: OverflowCallback): number {
    const sse = this.kind === 'sse';
    let pos = 0;
    let from = 0;
    for (;;) {
      const i = chunk.indexOf(LF, from);
      if (i === -1) break;
      from = i + 1;
      if (sse && !this.#emptyLineEndsAt(chunk, i)) continue;
      if (this.#skipping) {
        this.#skipping = false;
      } else if (this.#held > 0) {
        this.#pieces.push(chunk.subarray(pos, from));
        const whole = Buffer.concat(this.#pieces);
        this.#pieces = [];
        this.#held = 0;
        onEvent(whole, 0, whole.length);
      } else {
        onEvent(chunk, pos, from);
      }
      pos = from;
    }
    const boundary = pos;
    if (pos < chunk.length && !this.#skipping) {
      const rest = chunk.length - pos;
      if (this.#held + rest > this.maxEventBytes) {
        const dropped = this.#pieces;
        dropped.push(chunk.subarray(pos));
        this.#pieces = [];
        this.#held = 0;
        this.#skipping = true;
        onOverflow?.(dropped);
      } else {
        this.#pieces.push(Buffer.from(chunk.subarray(pos)));
        this.#held += rest;
      }
    }
    this.#remember(chunk);
    return boundary;
  }

  /** Removes and returns the held incomplete event (end of stream), or null. */
  takeHeld(): Buffer | null {
    if (this.#held === 0) return null;
    const held = Buffer.concat(this.#pieces);
    this.#pieces = [];
    this.#held = 0;
    return held;
  }

  #emptyLineEndsAt(chunk: Buffer, i: number): boolean {
    const b1 = i >= 1 ? (chunk[i - 1] as number) : this.#prev1;
    if (b1 === LF) return true;
    if (b1 !== CR) return false;
    const b2 = i >= 2 ? (chunk[i - 2] as number) : i === 1 ? this.#prev1 : this.#prev2;
    return b2 === LF;
  }

  #remember(chunk: Buffer): void {
    const n = chunk.length;
    if (n >= 2) {
      this.#prev2 = chunk[n - 2] as number;
      this.#prev1 = chunk[n - 1] as number;
    } else if (n === 1) {
      this.#prev2 = this.#prev1;
      this.#prev1 = chunk[0] as number;
    }
  }
}
