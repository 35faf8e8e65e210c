/**
 * The seam between uWebSockets.js (only `http/` imports it) and everything else.
 * Routes receive a RequestSnapshot (copied out of uWS's stack-allocated request before the
 * first await) and answer through a ResponseSink, which owns corking, backpressure and the
 * byte-exact streaming discipline.
 */

export type HeaderList = ReadonlyArray<readonly [name: string, value: string]>;

export interface RequestSnapshot {
  /** Upper-case method. */
  readonly method: string;
  /** Path without the query string, as sent (not decoded). */
  readonly path: string;
  /** Raw query string without the leading '?', '' when absent. */
  readonly query: string;
  /** Header names lower-case; repeated headers joined with ', ' (cookie with '; '). */
  readonly headers: ReadonlyMap<string, string>;
  /** Client address as text (IPv4 dotted, or IPv6). */
  readonly remoteAddress: string;
  /**
   * Behind a trusted proxy: the X-Forwarded-For chain from the client through the trusted
   * hops (routes/client-ip.ts). Absent when the peer is the client.
   */
  readonly forwardedFor?: string;
  /** Monotonic receive time (performance.now()). */
  readonly receivedAt: number;
}

export interface ResponseSink {
  /** The client went away; every write method is a no-op from then on. */
  readonly aborted: boolean;
  /** Status line and headers are out. */
  readonly headersSent: boolean;
  /** The response is complete (ended, closed or aborted). */
  readonly finished: boolean;
  /** Total body bytes handed to the sink so far. */
  readonly bytesWritten: number;
  /** Called once when the client aborts (never after a normal end). */
  onAbort(cb: () => void): void;
  /** A whole response of known length (errors, small JSON). */
  send(status: number, headers: HeaderList, body: Uint8Array | string): void;
  /**
   * Start a streamed response. With `contentLength` the body is written with a known length
   * (tryEnd); without it, chunked transfer encoding.
   */
  startStream(status: number, headers: HeaderList, contentLength?: number): void;
  /**
   * Hand over the next chunk. The sink takes ownership of the bytes only for the duration of the
   * call (it copies what it must keep). Returns false when the producer must pause until the
   * `onDrain` callback runs; bytes passed in a call that returned false are still delivered.
   */
  write(chunk: Uint8Array): boolean;
  /** Register the drain callback (called each time the sink can take more after a false). */
  onDrain(cb: () => void): void;
  /** Finish the streamed response once every queued byte is out. */
  end(): void;
  /** Drop the connection without a proper end (body cannot be completed correctly). */
  close(): void;
}

/** What a route handler gets: the copied request, the response sink, and a bounded body reader. */
export interface RouteContext {
  readonly req: RequestSnapshot;
  readonly sink: ResponseSink;
  /** Read the whole request body; rejects with payload_too_large past `limit`. */
  readBody(limit: number): Promise<Uint8Array>;
  /** Id for logs and the x-request-id response header. */
  readonly requestId: string;
}

export type RouteHandler = (ctx: RouteContext) => void | Promise<void>;
