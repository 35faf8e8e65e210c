import type { Method } from '../http/bind.js';
import type { RequestSnapshot, ResponseSink } from '../http/types.js';

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

/** A route for app.ts to bind: uWS method and pattern, and its handler. */
export interface RouteSpec {
  method: Method;
  pattern: string;
  handler: RouteHandler;
}
