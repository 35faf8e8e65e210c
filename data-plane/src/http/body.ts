import { GatewayError } from '../errors.js';
import { ClientAbortedError, onClientAbort, type Exchange } from './exchange.js';
import type { HttpResponse } from './uws.js';

export interface ReadBodyOptions {
  /** Declared body length; defaults to the Content-Length snapshotRequest saw. */
  contentLength?: number;
}

const FIRST_GROWABLE = 16 * 1024;
const EMPTY = new Uint8Array(0);

/** The response went out before the body was read: the rest of the body is discarded. */
export class BodyDiscardedError extends Error {
  override readonly name = 'BodyDiscardedError';
  readonly code = 'body_discarded';
  constructor() {
    super('The request was answered before its body was read; the body was discarded.');
  }
}

/**
 * Read the whole request body, at most `limit` bytes.
 *
 * Call it before the handler's first await: uWS delivers body bytes only to an onData handler
 * that exists when they arrive, and drops them otherwise. Rejects with
 * GatewayError('payload_too_large') as soon as the declared or received size passes `limit`
 * (the rest is discarded and the response will carry Connection: close), and with
 * ClientAbortedError when the client goes away mid-body (including a chunked body cut off
 * mid-chunk: uWS reports that as an abort). Once the response has gone out (an early refusal)
 * the reader stops: what still arrives is discarded, the bytes held so far are released, and
 * the promise rejects with BodyDiscardedError; the sink closes such a connection after the
 * answer (exchange.ts closesAfterResponse).
 */
export function readBody(res: HttpResponse, exchange: Exchange, limit: number, opts: ReadBodyOptions = {}): Promise<Uint8Array> {
  const declared = opts.contentLength ?? exchange.contentLength;
  const promise = new Promise<Uint8Array>((resolve, reject) => {
    if (exchange.aborted) return reject(new ClientAbortedError());
    if (exchange.responded) return reject(new BodyDiscardedError());
    const tooLarge = () => {
      exchange.closeAfterResponse = true;
      return new GatewayError('payload_too_large', `The request body is larger than the limit of ${limit} bytes.`);
    };
    // Answer 413 from the header alone, without reading a byte (RFC 9110 §15.5.14).
    if (declared !== undefined && declared > limit) return reject(tooLarge());
    // No body announced: nothing to wait for (and no reliance on uWS's empty final onData).
    if (exchange.hasBody === false) {
      exchange.bodyRead = true;
      return resolve(EMPTY);
    }

    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      unsubscribe();
      if (exchange.onResponded === discard) exchange.onResponded = null;
      fn();
      buf = EMPTY; // whatever was read is the promise's now, or garbage
    };
    const unsubscribe = onClientAbort(exchange, () => settle(() => reject(new ClientAbortedError())));
    const discard = () => settle(() => reject(new BodyDiscardedError()));
    exchange.onResponded = discard;

    // Known length: one buffer, filled in place. Unknown (chunked): grow by doubling up to
    // limit. Allocated on the first byte, so a client that only declares a length costs nothing.
    let buf = EMPTY;
    let received = 0;
    res.onData((chunk, isLast) => {
      if (settled) return; // refused, answered or aborted: discard what is still in flight
      const n = chunk.byteLength;
      if (received + n > limit) return settle(() => reject(tooLarge()));
      if (buf === EMPTY && n > 0) buf = new Uint8Array(declared ?? Math.min(limit, Math.max(FIRST_GROWABLE, n)));
      if (received + n > buf.length) {
        if (declared !== undefined)
          return settle(() => reject(new GatewayError('bad_request', 'The request body is longer than its Content-Length.')));
        const grown = new Uint8Array(Math.min(limit, Math.max(buf.length * 2, received + n)));
        grown.set(buf.subarray(0, received));
        buf = grown;
      }
      // uWS neuters `chunk` when this callback returns: copy now (docs/index.d.ts onData).
      buf.set(new Uint8Array(chunk), received);
      received += n;
      if (!isLast) return;
      if (declared !== undefined && received !== declared)
        return settle(() => reject(new GatewayError('bad_request', 'The request body is shorter than its Content-Length.')));
      exchange.bodyRead = true;
      const body = received === buf.length ? buf : buf.subarray(0, received);
      settle(() => resolve(body));
    });
  });
  // The route may start reading before it awaits something else (it must, see above); a
  // rejection that lands in between must not count as unhandled and crash the process. The
  // caller still sees the rejection when it awaits `promise`.
  promise.catch(() => {});
  return promise;
}
