/**
 * Per-response state shared by the request snapshot, the body reader and the sink: one plain
 * object per request, created by openExchange in the uWS handler and handed to each of them
 * (bind.ts). It used to live in a WeakMap keyed by the uWS response, which kept each request's
 * whole graph reachable until the map's ephemeron was cleared by a full GC, so it was promoted
 * to old space every time.
 *
 * uWS keeps ONE onAborted handler per response (a second res.onAborted replaces the first), yet
 * both the body reader and the sink must hear about a client abort. So this module owns the only
 * res.onAborted registration and fans the event out. Nothing outside http/ may call
 * res.onAborted itself.
 */
import type { HttpResponse } from './uws.js';

/** The client closed the connection; nothing can be written back. */
export class ClientAbortedError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'client_aborted';
  constructor() {
    super('The client closed the connection.');
  }
}

export interface Exchange {
  /** Set by uWS's onAborted (connection closed before the response finished). */
  aborted: boolean;
  listeners: Array<() => void>;
  /** From the request headers, copied by snapshotRequest while `req` was alive. */
  contentLength: number | undefined;
  /** False when the headers announce no body (undefined: not known). */
  hasBody: boolean | undefined;
  /** The body reader refused the body: answer with `Connection: close`, do not read on. */
  closeAfterResponse: boolean;
  /** readBody has the whole body (or the headers announced none). */
  bodyRead: boolean;
  /** The sink committed the response's status line: body bytes still arriving are not wanted. */
  responded: boolean;
  /** Set by a body reader still reading: told when the response is committed (markResponded). */
  onResponded: (() => void) | null;
  /** Why the request head is invalid (RFC 9112 §3.2, §6), set by snapshotRequest; null when valid. */
  framingError: string | null;
}

/**
 * Must the connection close after this response? Yes when the body was refused, and whenever
 * the answer goes out before a body the client announced was read: the rest of the body would
 * otherwise keep arriving (uWS parses and delivers it to the end, however long), costing reads
 * for a request already answered. RFC 9112 §9.6 lets a server close instead of reading it.
 */
export function closesAfterResponse(ex: Exchange): boolean {
  return ex.closeAfterResponse || (ex.hasBody === true && !ex.bodyRead);
}

/**
 * The state for `res`, registering the onAborted fan-out. uWS requires onAborted before the
 * route handler returns (docs/index.d.ts: "Returning from an Http request handler without
 * attaching an abort handler is ill-use"), so call this synchronously in the handler, once.
 */
export function openExchange(res: HttpResponse): Exchange {
  const created: Exchange = {
    aborted: false,
    listeners: [],
    contentLength: undefined,
    hasBody: undefined,
    closeAfterResponse: false,
    bodyRead: false,
    responded: false,
    onResponded: null,
    framingError: null,
  };
  res.onAborted(() => {
    // uWS has already invalidated `res` when this runs: listeners must not touch it.
    created.aborted = true;
    const listeners = created.listeners;
    created.listeners = [];
    for (const listener of listeners) listener();
  });
  return created;
}

/** The sink commits the response: a body reader still running stops (body.ts). */
export function markResponded(ex: Exchange): void {
  ex.responded = true;
  const cb = ex.onResponded;
  ex.onResponded = null;
  cb?.();
}

/** Run `cb` once when the client aborts; returns an unsubscribe function. */
export function onClientAbort(ex: Exchange, cb: () => void): () => void {
  ex.listeners.push(cb);
  return () => {
    const i = ex.listeners.indexOf(cb);
    if (i >= 0) ex.listeners.splice(i, 1);
  };
}
