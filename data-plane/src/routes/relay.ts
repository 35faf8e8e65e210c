import { GatewayError, toNdjsonErrorLine, toSseErrorEvent, type ErrorFlavor } from '../errors.js';
import type { HeaderList, ResponseSink } from '../http/types.js';
import type { ResponseFormat, UsageTracker } from '../proxy/usage.js';
import { sendError } from './respond.js';

const encoder = new TextEncoder();
/** An SSE comment line: ignored by every SSE parser (WHATWG HTML §9.2.6), keeps the socket busy. */
const HEARTBEAT = encoder.encode(': keep-alive\n\n');
/** Ollama clients parse NDJSON line by line; a blank line is skipped by them. */
const NDJSON_HEARTBEAT = encoder.encode('\n');

export const SSE_HEADERS: HeaderList = [
  ['content-type', 'text/event-stream'],
  ['cache-control', 'no-cache'],
  // Tell any buffering reverse proxy in front (nginx) to pass events through at once.
  ['x-accel-buffering', 'no'],
];

/**
 * The upstream's headers minus those the gateway sets itself, so none is sent twice: its own
 * x-request-id (the gateway's is the one in its logs), and when the gateway states its limits,
 * every x-ratelimit-* of the upstream's (those describe the upstream credential, not the key).
 */
function withoutOurs(upstream: HeaderList, ours: HeaderList): Array<readonly [string, string]> {
  const names = new Set(ours.map(([k]) => k));
  const limits = ours.some(([k]) => k.startsWith('x-ratelimit-'));
  return upstream.filter(([k]) => !names.has(k) && !(limits && k.startsWith('x-ratelimit-')));
}

/**
 * The response half of one proxied request (routes/proxy-exchange.ts extends it, so the request's
 * state and its response are one object): the upstream's status and headers, the body with
 * backpressure, heartbeats while a stream is silent, and errors in the right shape for how far
 * the response has got (an error body before headers; one SSE error event or NDJSON error line
 * after; a dropped connection for bodies that cannot carry an error).
 *
 * Per upstream read, not per chunk: undici calls back once per HTTP chunk, and a model server's
 * events are each a chunk, dozens of them in one socket read. stage() only keeps the chunks
 * (views of the read's buffer, which nothing reuses); a microtask, which runs once undici has
 * parsed the whole read, hands them to the usage meter as one buffer (one scan, one framer pass)
 * and to the sink as one write, then calls flushed() (the proxy's token budget check).
 * The end of the body, an error, and the end of the response flush first, so order is kept.
 *
 * No function is made per response: the heartbeat timer gets the relay as its argument, and the
 * relays with staged data wait in one module-wide queue drained by one shared microtask.
 */
export abstract class Relay {
  protected format: ResponseFormat = 'opaque';
  protected meter: UsageTracker | null = null;
  private lastWriteAt = 0;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private heartbeatMs = 0;
  private heartbeatExpect: 'sse' | 'ndjson' = 'sse';
  /** Headers were committed by a heartbeat before the upstream answered. */
  private precommitted = false;
  bytesOut = 0;
  /** Chunks of the current upstream read, not yet metered or written. */
  private staged: Uint8Array[] = [];
  private flushQueued = false;
  /** The sink took the last write without pushing back (reset when it drains). */
  protected sinkOk = true;

  /** Relays with a flush owed, in the order their reads arrived; `spare` is the other buffer. */
  private static queue: Relay[] = [];
  private static spare: Relay[] = [];
  private static queued = false;

  constructor(
    protected readonly sink: ResponseSink,
    protected readonly flavor: ErrorFlavor,
  ) {}

  /** The gateway's own response headers (request id, tier, rate limits), in the order sent. */
  protected abstract extraHeaders(): HeaderList;
  /** Called after each flush of staged data. */
  protected abstract flushed(): void;
  /** A flush run from the shared microtask or a heartbeat threw (a gateway bug): contain it. */
  protected abstract callbackThrew(what: string, err: unknown): void;

  /**
   * For streaming requests: every `intervalMs` without a write, send a heartbeat. Before the
   * upstream answers this commits a 200 event stream (uWS closes connections idle for 10 s).
   */
  protected startHeartbeat(intervalMs: number, expect: 'sse' | 'ndjson'): void {
    this.lastWriteAt = performance.now();
    this.heartbeatMs = intervalMs;
    this.heartbeatExpect = expect;
    this.heartbeatTimer = setInterval(Relay.beat, Math.max(50, Math.floor(intervalMs / 2)), this);
    this.heartbeatTimer.unref();
  }

  private static beat(relay: Relay): void {
    try {
      relay.heartbeat();
    } catch (err) {
      relay.callbackThrew('heartbeat', err);
    }
  }

  private heartbeat(): void {
    if (this.sink.finished) return this.stopHeartbeat();
    if (performance.now() - this.lastWriteAt < this.heartbeatMs * 0.9) return;
    if (!this.sink.headersSent) {
      const expect = this.heartbeatExpect;
      this.precommitted = true;
      this.format = expect;
      this.sink.startStream(200, [
        ...(expect === 'sse' ? SSE_HEADERS : [['content-type', 'application/x-ndjson'] as const]),
        ...this.extraHeaders(),
      ]);
    } else if (this.meter && !this.meter.atEventBoundary) {
      return; // never split an event with a comment
    }
    this.lastWriteAt = performance.now();
    this.sink.write(this.format === 'ndjson' ? NDJSON_HEARTBEAT : HEARTBEAT);
  }

  protected stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  /**
   * Upstream headers arrived. Returns false when the response cannot be relayed as is (the
   * stream was precommitted and the upstream failed): the caller then ends with an error.
   */
  protected startResponse(
    status: number,
    upstreamHeaders: HeaderList,
    contentLength: number | null,
    meter: UsageTracker,
    rewritesBody: boolean,
  ): boolean {
    this.meter = meter;
    if (this.precommitted) return status < 400;
    this.format = meter.format;
    const extra = this.extraHeaders();
    const headers = withoutOurs(upstreamHeaders, extra);
    if (this.format === 'sse') {
      for (const h of SSE_HEADERS) if (!headers.some(([k]) => k === h[0])) headers.push(h);
    }
    headers.push(...extra);
    // A known length is kept only when every byte passes through unchanged.
    const keepLength = contentLength !== null && !rewritesBody;
    this.sink.startStream(status, headers, keepLength ? contentLength : undefined);
    return true;
  }

  get responseFormat(): ResponseFormat {
    return this.format;
  }

  protected get streamed(): boolean {
    return this.format === 'sse' || this.format === 'ndjson';
  }

  /**
   * Stage an upstream chunk; it is written when the read is done (see the class comment). False
   * = pause the upstream: the sink pushed back on the last write and has not drained yet.
   */
  protected stage(chunk: Uint8Array): boolean {
    this.staged.push(chunk);
    if (!this.flushQueued) {
      this.flushQueued = true;
      Relay.queue.push(this);
      if (!Relay.queued) {
        Relay.queued = true;
        queueMicrotask(Relay.flushQueue);
      }
    }
    return this.sinkOk;
  }

  /**
   * The shared microtask: flush every relay queued since it was scheduled. One that stages again
   * while this runs (a drain resuming its upstream) goes to the other buffer and a new microtask,
   * exactly as if each relay had its own.
   */
  private static flushQueue(this: void): void {
    const due = Relay.queue;
    Relay.queue = Relay.spare;
    Relay.spare = due;
    Relay.queued = false;
    for (let i = 0; i < due.length; i++) {
      const relay = due[i] as Relay;
      try {
        relay.flush();
      } catch (err) {
        relay.callbackThrew('flush', err);
      }
    }
    due.length = 0;
  }

  /** Meter and write what the current read delivered, as one piece. */
  private flush(): void {
    this.flushQueued = false;
    const staged = this.staged;
    if (staged.length === 0) return;
    this.staged = [];
    if (this.sink.finished) return;
    const read = staged.length === 1 ? (staged[0] as Uint8Array) : Buffer.concat(staged);
    const out = this.meter ? this.meter.push(read) : read;
    if (out.byteLength > 0) {
      this.lastWriteAt = performance.now();
      this.bytesOut += out.byteLength;
      this.sinkOk = this.sink.write(out);
    }
    this.flushed();
  }

  /** The upstream body ended. Always settles the meter, even when a known-length body already completed the response. */
  protected completeResponse(): void {
    this.flush();
    this.stopHeartbeat();
    const tail = this.meter?.end();
    if (this.sink.finished) return;
    if (tail && tail.byteLength > 0) {
      this.bytesOut += tail.byteLength;
      this.sink.write(tail);
    }
    this.sink.end();
  }

  /** End the response because of `err`, in the shape the response's progress allows. */
  protected failResponse(err: GatewayError): void {
    this.flush(); // what arrived before the failure goes first (a no-op when called from a flush)
    this.stopHeartbeat();
    if (this.sink.finished) return;
    if (!this.sink.headersSent) return sendError(this.sink, err, this.flavor, this.extraHeaders());
    if (this.format === 'sse') {
      this.sink.write(encoder.encode(toSseErrorEvent(err)));
      return this.sink.end();
    }
    if (this.format === 'ndjson') {
      this.sink.write(encoder.encode(toNdjsonErrorLine(err)));
      return this.sink.end();
    }
    // A JSON or binary body cut short cannot carry an error: drop the connection so the client
    // sees a truncated response rather than a silently wrong one.
    this.sink.close();
  }
}
