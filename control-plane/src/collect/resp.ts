/**
 * RESP2, the Redis wire protocol (https://redis.io/docs/latest/develop/reference/protocol-spec/):
 * just what the bulk reader needs, an encoder for commands and an incremental parser for
 * replies. The parser resumes inside arrays at element granularity, so a reply of 100k members
 * (SMEMBERS of an active set) split over many TCP chunks is parsed once, not once per chunk.
 */
export class RedisReplyError {
  constructor(readonly message: string) {}
}
export type Reply = string | number | null | RedisReplyError | Reply[];

export function encodeCommand(args: readonly (string | number)[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) {
    const s = typeof a === 'number' ? String(a) : a;
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

/**
 * Many commands sharing a name and trailing arguments, with one varying key each (`HMGET key f1
 * f2 …` for 100k keys), encoded straight into Buffers of about `sliceBytes`, produced as the
 * writer asks for them: the constant parts are encoded once, no per-command strings or arrays
 * are built, and at most a slice or two exist at once.
 */
export function* encodeKeyedCommands(
  command: string,
  keys: Iterable<string>,
  tail: readonly string[],
  sliceBytes = 256 * 1024,
): Generator<Buffer> {
  const head = Buffer.from(`*${2 + tail.length}\r\n${encodeCommand([command]).slice(4)}`);
  const tailBuf = Buffer.from(encodeCommand(tail).replace(/^\*\d+\r\n/, ''));
  let buf = Buffer.allocUnsafe(sliceBytes);
  let off = 0;
  for (const key of keys) {
    const len = Buffer.byteLength(key);
    const need = head.length + tailBuf.length + len + 16;
    if (off + need > buf.length) {
      yield buf.subarray(0, off);
      buf = Buffer.allocUnsafe(Math.max(sliceBytes, need));
      off = 0;
    }
    off += head.copy(buf, off);
    off += buf.write(`$${len}\r\n`, off, 'latin1');
    off += buf.write(key, off, 'utf8');
    buf[off++] = 13;
    buf[off++] = 10;
    off += tailBuf.copy(buf, off);
  }
  if (off > 0) yield buf.subarray(0, off);
}

/** Parses the decimal integer in buf[start, end) (optionally negative) without making a string. */
function intAt(buf: Buffer, start: number, end: number): number {
  let i = start;
  let neg = false;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  let n = 0;
  for (; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return Number.NaN;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

const NEED = Symbol('need more data');
const OPENED = Symbol('array opened');
const EMPTY = Buffer.alloc(0);
const CR = 13;

export class RespParser {
  #buf: Buffer = EMPTY;
  #off = 0;
  /** `stream`: a top-level array whose elements go to the element callback instead of `items`. */
  readonly #stack: Array<{ items: Reply[]; left: number; stream: boolean }> = [];
  readonly #onReply: (reply: Reply) => void;
  readonly #numeric: () => boolean;
  readonly #onElement: ((element: Reply) => void) | null;

  /**
   * `numericBulk`: asked before each bulk string; when true, the string is decoded as a
   * non-negative decimal integer straight from the bytes (NaN when it is not one), sparing a
   * string per counter value on the hot read.
   * `streamElements`: asked when a reply opens with an array; when true, each of its elements is
   * handed to `onElement` as soon as it is parsed and not kept, and the reply itself arrives as
   * an empty array. A 10k-field HGETALL then never exists as one array, whose strings would
   * outlive young-generation collections while the rest of it arrives.
   */
  constructor(
    onReply: (reply: Reply) => void,
    numericBulk: () => boolean = () => false,
    streamElements?: { when: () => boolean; onElement: (element: Reply) => void },
  ) {
    this.#onReply = onReply;
    this.#numeric = numericBulk;
    this.#onElement = streamElements?.onElement ?? null;
    this.#streamWhen = streamElements?.when ?? (() => false);
  }

  readonly #streamWhen: () => boolean;

  reset(): void {
    this.#buf = EMPTY;
    this.#off = 0;
    this.#stack.length = 0;
  }

  feed(chunk: Buffer): void {
    // Only the unparsed tail (at most one element) is carried over.
    this.#buf = this.#off < this.#buf.length ? Buffer.concat([this.#buf.subarray(this.#off), chunk]) : chunk;
    this.#off = 0;
    for (;;) {
      const v = this.#element();
      if (v === NEED) return;
      if (v === OPENED) continue;
      this.#deliver(v);
    }
  }

  #deliver(value: Reply): void {
    let v = value;
    for (;;) {
      const top = this.#stack[this.#stack.length - 1];
      if (!top) return this.#onReply(v);
      if (top.stream) this.#onElement!(v);
      else top.items.push(v);
      if (--top.left > 0) return;
      this.#stack.pop();
      v = top.items;
    }
  }

  /** One element at #off: a value, OPENED (an array header was consumed), or NEED. */
  #element(): Reply | typeof NEED | typeof OPENED {
    const buf = this.#buf;
    const start = this.#off;
    if (start >= buf.length) return NEED;
    const eol = buf.indexOf(CR, start + 1);
    if (eol < 0 || eol + 1 >= buf.length) return NEED;
    const type = buf[start];
    const next = eol + 2;
    switch (type) {
      case 0x24: {
        // $ bulk string
        const len = intAt(buf, start + 1, eol);
        if (len < 0) {
          this.#off = next;
          return null;
        }
        if (next + len + 2 > buf.length) return NEED;
        this.#off = next + len + 2;
        if (this.#numeric()) return len === 0 || len > 15 || buf[next] === 0x2d ? Number.NaN : intAt(buf, next, next + len);
        return buf.toString('utf8', next, next + len);
      }
      case 0x2a: {
        // * array
        const n = intAt(buf, start + 1, eol);
        this.#off = next;
        if (n < 0) return null;
        if (n === 0) return [];
        this.#stack.push({ items: [], left: n, stream: this.#stack.length === 0 && this.#onElement !== null && this.#streamWhen() });
        return OPENED;
      }
      case 0x3a: // : integer
        this.#off = next;
        return intAt(buf, start + 1, eol);
      case 0x2b: // + simple string
        this.#off = next;
        return buf.toString('utf8', start + 1, eol);
      case 0x2d: // - error
        this.#off = next;
        return new RedisReplyError(buf.toString('utf8', start + 1, eol));
      default:
        throw new Error(`RESP protocol error: unexpected type byte 0x${(type ?? 0).toString(16)}`);
    }
  }
}
