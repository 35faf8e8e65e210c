/**
 * ResponseSink over a uWS HttpResponse: the byte-exact streaming pump. cork.ts states the write
 * rules and why: one body slice per cork region; from a caller's context at most SLICE bytes
 * per turn, the rest from setImmediate/onWritable; tryEnd retries never shrink.
 *
 * Backpressure: uWS takes every byte of a write (cork buffer or its own backlog); write() false
 * or tryEnd not ok means its backlog did not drain, so we stop, queue the rest and resume from
 * onWritable. With an onWritable handler registered uWS never drains its backlog by itself
 * (HttpContext on_writable), so ours always writes or flushes with an empty cork region. The
 * first slice after a writable event is at most PROBE bytes: an event that finds the backlog
 * still undrained grows it by no more than that.
 *
 * Coalescing: write() only queues (a copy of) its bytes; a setImmediate pumps them. So all the
 * writes of one turn (undici calls back once per HTTP chunk, and a model server's events are
 * each a chunk, dozens of them in one socket read) leave together, in regions of at most SLICE
 * bytes each: one TLS record and one send per region instead of one per event. setImmediate
 * never runs inside a uWS cork region (cork.ts RULE 2), so every pumped region starts empty and
 * may carry a whole SLICE. startStream() only records the status and headers; they go out in the
 * first region (with the first body slice, or alone when no body byte came that turn), and a
 * chunked response ends (the zero chunk) in the region of its last slice. A 66-event stream
 * that arrives in one read is 2 records instead of 68 (test/http/sink.test.ts).
 *
 * Lifetime: after onAborted, and once end() or a completing tryEnd returned, `res` is invalid
 * and never touched again (docs/index.d.ts HttpResponse). A false from write() is always
 * followed by onDrain, onAbort or the end of the response.
 */
import { ByteQueue } from './byte-queue.js';
import { corked, OVERHEAD, SLICE, TurnBudget } from './cork.js';
import { closesAfterResponse, markResponded, onClientAbort, type Exchange } from './exchange.js';
import { headBytes, isBodiless, wantsClose, writeHead } from './head.js';
import type { HeaderList, ResponseSink } from './types.js';
import type { HttpResponse } from './uws.js';

const PROBE = 1024;
const EMPTY = new Uint8Array(0);
/** Bytes the sink may hold for pacing before it asks the producer to pause. */
export const HIGH_WATER = 64 * 1024;
const noop = () => {};

/** Counters for tests and metrics. */
export interface SinkStats {
  /** Bytes accepted by write() and not yet handed to uWS. */
  readonly queuedBytes: number;
  readonly peakQueuedBytes: number;
  /** Times uWS reported backpressure (its backlog did not drain). */
  readonly backpressureEvents: number;
}

export interface SinkOptions {
  /** Answer with Connection: close (also on when the body reader refused the body). */
  closeConnection?: boolean;
  /** The request is a HEAD: every response is its status line and headers only. */
  head?: boolean;
}

export function createSink(res: HttpResponse, exchange: Exchange, opts: SinkOptions = {}): ResponseSink & SinkStats {
  return new UwsSink(res, exchange, opts.closeConnection === true, opts.head === true);
}

class UwsSink implements ResponseSink, SinkStats {
  readonly #res: HttpResponse;
  readonly #exchange: Exchange;
  #closeConnection: boolean;
  #aborted = false;
  #headersSent = false;
  #finished = false;
  #closing = false;
  #bytesWritten = 0;
  #fixed = false;
  #total = 0;
  readonly #queue = new ByteQueue();
  #events = 0;
  /** uWS's backlog did not drain: wait for onWritable. */
  #blocked = false;
  #probe = false;
  /** Bytes of a refused tryEnd that the retry must offer again (cork.ts RULE 3). */
  #retryMin = 0;
  #ending = false;
  /** write() returned false and onDrain is owed. */
  #owed = false;
  readonly #budget = new TurnBudget();
  #continuation: NodeJS.Immediate | undefined;
  #abortCbs: Array<() => void> = [];
  #drainCb: () => void = noop;
  /** Status and headers recorded by startStream, not yet handed to uWS. */
  #head: { status: number; headers: HeaderList; size: number } | null = null;
  readonly #headRequest: boolean;

  constructor(res: HttpResponse, exchange: Exchange, closeConnection: boolean, headRequest: boolean) {
    this.#res = res;
    this.#exchange = exchange;
    this.#closeConnection = closeConnection;
    this.#headRequest = headRequest;
    if (exchange.aborted) this.#aborted = this.#finished = true;
    onClientAbort(exchange, () => {
      if (this.#closing) return; // our own close(), not the client's
      this.#aborted = true;
      this.#finish();
      for (const cb of this.#abortCbs.splice(0)) cb();
    });
  }

  get aborted() {
    return this.#aborted;
  }
  get headersSent() {
    return this.#headersSent;
  }
  get finished() {
    return this.#finished;
  }
  get bytesWritten() {
    return this.#bytesWritten;
  }
  get queuedBytes() {
    return this.#queue.length;
  }
  get peakQueuedBytes() {
    return this.#queue.peak;
  }
  get backpressureEvents() {
    return this.#events;
  }

  onAbort(cb: () => void): void {
    if (this.#aborted) cb();
    else if (!this.#finished) this.#abortCbs.push(cb);
  }

  onDrain(cb: () => void): void {
    this.#drainCb = cb;
  }

  send(status: number, headers: HeaderList, body: Uint8Array | string): void {
    if (this.#finished || this.#headersSent) return;
    if (this.#headRequest) return this.#answerHead(status, headers, typeof body === 'string' ? Buffer.byteLength(body) : body.length);
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const size = headBytes(status, headers) + bytes.length + OVERHEAD;
    if (size > this.#budget.room()) {
      this.startStream(status, headers, bytes.length);
      this.write(bytes);
      return this.end();
    }
    // Fits one cork region: uWS's end() copies it all (or buffers it), it cannot fail.
    const close = this.#wantsClose(headers);
    this.#headersSent = true;
    markResponded(this.#exchange);
    this.#bytesWritten = isBodiless(status) ? 0 : bytes.length;
    this.#budget.spend(size);
    this.#res.cork(() => {
      writeHead(this.#res, status, headers);
      // No Content-Length on bodiless statuses. (An explicit undefined length would reach uWS
      // as NaN, so endWithoutBody gets no arguments and no close flag.)
      if (isBodiless(status)) this.#res.endWithoutBody();
      else this.#res.end(bytes, close);
    });
    this.#finish();
  }

  startStream(status: number, headers: HeaderList, contentLength?: number): void {
    if (this.#finished) return;
    if (this.#headersSent) throw new Error('startStream: the response has already started');
    const size = headBytes(status, headers) + OVERHEAD;
    if (size > SLICE) throw new RangeError(`response header block of ${size} bytes does not fit one cork region`);
    if (this.#headRequest) return this.#answerHead(status, headers, contentLength);
    if (wantsClose(headers)) this.#closeConnection = true;
    this.#headersSent = true;
    markResponded(this.#exchange);
    this.#fixed = contentLength !== undefined;
    this.#total = contentLength ?? 0;
    this.#res.onWritable(() => this.#writable());
    this.#head = { status, headers, size };
    if (this.#fixed && this.#total === 0) return this.#flushHead(false); // complete at once
    this.#defer(); // with the first body slice if one comes this turn, else alone
  }

  /**
   * The whole answer to a HEAD: status line and headers, never content. uWS does not know HEAD
   * and would write the body a GET gets, which the client then reads as the next response
   * (RFC 9110 §9.3.2, RFC 9112 §6.3 rule 1). Content-Length, when known, is the GET's length
   * (RFC 9110 §8.6). Later write() and end() calls find the response finished.
   */
  #answerHead(status: number, headers: HeaderList, length: number | undefined): void {
    const close = this.#wantsClose(headers);
    this.#headersSent = true;
    this.#budget.spend(headBytes(status, headers) + OVERHEAD);
    this.#res.cork(() => {
      writeHead(this.#res, status, headers);
      if (close) {
        // Only uWS's own end can close after the answer; it then states Content-Length: 0.
        this.#res.endWithoutBody(0, true);
        return;
      }
      // Not endWithoutBody(length): this build then waits for `length` body bytes and never
      // completes the response (HttpResponse::internalEnd, offset != totalSize), so the next
      // request on the connection finds it pending and uWS closes the connection. Without
      // arguments uWS writes no length of its own and completes at once.
      if (length !== undefined && !isBodiless(status)) this.#res.writeHeader('content-length', String(length));
      this.#res.endWithoutBody();
    });
    this.#finish();
  }

  /** The recorded head alone, in its own region (no body byte came to carry it). */
  #flushHead(fresh: boolean): void {
    const head = this.#head;
    if (head === null || this.#finished) return;
    if (!fresh && this.#budget.room() < head.size + OVERHEAD) return this.#defer();
    this.#head = null;
    this.#budget.spend(head.size + OVERHEAD);
    const done = corked(this.#res, () => {
      writeHead(this.#res, head.status, head.headers);
      // Known length: an empty tryEnd writes Content-Length and ends the header block now.
      // (Chunked: uWS adds Transfer-Encoding and the blank line with the first write.)
      return this.#fixed && this.#res.tryEnd(EMPTY, this.#total)[1];
    });
    if (done) this.#finish(); // Content-Length: 0 is already complete
  }

  /** Writes the recorded head, if any (inside a cork region; the caller budgets its size). */
  #takeHead(): void {
    const head = this.#head;
    if (head === null) return;
    this.#head = null;
    writeHead(this.#res, head.status, head.headers);
  }

  write(chunk: Uint8Array): boolean {
    if (this.#finished || this.#ending) return false;
    if (!this.#headersSent) throw new Error('write: call startStream first');
    if (chunk.length > 0) {
      if (this.#fixed && this.#bytesWritten + chunk.length > this.#total) {
        this.close(); // more than the promised Content-Length cannot be delivered intact
        return false;
      }
      this.#bytesWritten += chunk.length;
      this.#queue.push(chunk);
      // Pumped next turn, with whatever else this turn writes (see Coalescing above).
      if (!this.#blocked) this.#defer();
    }
    // Pause the producer only for real backpressure (uWS could not drain) or more than
    // HIGH_WATER queued. Pausing for the few bytes held back by per-turn pacing made undici
    // pause and re-buffer its socket on every chunk, which pinned megabytes per stream.
    const ok = !this.#blocked && this.#queue.length <= HIGH_WATER;
    if (!ok) this.#owed = true;
    return ok;
  }

  end(): void {
    if (this.#finished || this.#ending) return;
    if (!this.#headersSent) return this.send(200, [], EMPTY);
    this.#ending = true;
    if (this.#queue.length === 0 && this.#continuation === undefined) this.#complete(false);
  }

  close(): void {
    if (this.#finished) return;
    this.#closing = true;
    this.#finish();
    this.#res.close(); // runs onAborted synchronously; #closing tells it apart from a client abort
  }

  /**
   * Hand queued bytes to uWS, one slice of up to SLICE bytes (joined from as many queued pieces
   * as fit) per cork region, until uWS pushes back. Runs only from setImmediate or onWritable,
   * never inside a uWS region, so each region starts empty (cork.ts RULE 2).
   */
  #pump(): void {
    const res = this.#res;
    while (!this.#finished && !this.#blocked && this.#queue.length > 0) {
      // The recorded status and headers share this region with the slice (RULE 1 counts them).
      const headSize = this.#head?.size ?? 0;
      const n = Math.max(
        Math.min(this.#queue.length, this.#probe ? PROBE : SLICE - headSize),
        Math.min(this.#queue.length, this.#retryMin),
      );
      if (n <= 0) {
        // No room for a body byte beside a header block this large: send the head alone first.
        this.#flushHead(true);
        continue;
      }
      const piece = this.#queue.peek(n);
      let accepted = n;
      if (!this.#fixed) {
        // The last slice of an ended chunked body carries the zero chunk in the same region.
        const last = this.#ending && n === this.#queue.length;
        const close = last && this.#wantsClose([]);
        this.#blocked = !corked(res, () => {
          this.#takeHead();
          const ok = res.write(piece);
          if (last && !this.#finished) res.end(undefined, close);
          return ok;
        });
        if (this.#finished) return; // the write found the socket closed; onAborted ran
        if (last) {
          // uWS drains any backlog itself once the response is done, and `res` is invalid.
          this.#budget.spend(n + 2 * OVERHEAD + headSize);
          this.#finish();
          return this.#drained();
        }
      } else {
        const before = res.getWriteOffset();
        const [ok, done] = corked(res, () => (this.#takeHead(), res.tryEnd(piece, this.#total)));
        if (done) {
          // tryEnd completed the response and uWS invalidated `res`; a producer still waiting
          // on a false must hear that everything was taken.
          this.#finish();
          return this.#drained();
        }
        if (this.#finished) return;
        accepted = res.getWriteOffset() - before;
        this.#retryMin = n - accepted;
        this.#blocked = !ok;
      }
      this.#probe = false;
      this.#budget.spend(accepted + OVERHEAD + headSize);
      this.#queue.consume(accepted);
      if (this.#blocked) this.#events++;
    }
    if (this.#finished || this.#blocked || this.#queue.length > 0) return;
    if (this.#ending) return this.#complete(true);
    this.#drained();
  }

  /** uWS found the socket writable. Not inside a uWS cork region: every region here is fresh. */
  #writable(): boolean {
    if (this.#finished) return true;
    this.#blocked = false;
    this.#probe = true;
    if (this.#queue.length === 0) this.#res.cork(noop); // flush uWS's backlog: it will not on its own
    this.#pump();
    return true;
  }

  /** Queue empty after end(): finish the response. */
  #complete(fresh: boolean): void {
    // Known length: the last tryEnd already ended it; fewer bytes than promised cannot be.
    if (this.#fixed) return this.close();
    const headSize = this.#head?.size ?? 0;
    if (!fresh && this.#budget.room() < OVERHEAD + headSize) return this.#defer();
    const close = this.#wantsClose([]);
    this.#budget.spend(OVERHEAD + headSize);
    // The zero chunk. Once the response is done uWS drops our onWritable and drains any backlog
    // itself (HttpResponseData::markDone), and `res` becomes invalid.
    this.#res.cork(() => {
      this.#takeHead();
      this.#res.end(undefined, close);
    });
    this.#finish();
    this.#drained();
  }

  #drained(): void {
    if (!this.#owed) return;
    this.#owed = false;
    this.#drainCb();
  }

  /** Continue next turn: setImmediate never runs inside a uWS callback (cork.ts RULE 2). */
  #defer(): void {
    this.#continuation ??= setImmediate(() => {
      this.#continuation = undefined;
      this.#pump();
      this.#flushHead(true); // a head with nothing queued behind it (the queue was empty, or uWS pushed back)
    });
  }

  /** The one way a response ends (end, close, abort, completed tryEnd); idempotent. */
  #finish(): void {
    this.#finished = true;
    this.#queue.clear();
    if (this.#continuation !== undefined) clearImmediate(this.#continuation);
    this.#continuation = undefined;
    this.#head = null;
  }

  #wantsClose(headers: HeaderList): boolean {
    return this.#closeConnection || wantsClose(headers) || closesAfterResponse(this.#exchange);
  }
}
