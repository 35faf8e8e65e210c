import type { Method } from '../http/bind.js';
import type { RouteHandler } from '../http/types.js';

// The handler contract lives in http/ (bind.ts adapts it to uWS); routes name it from here.
export type { RouteContext, RouteHandler } from '../http/types.js';

/** A route for app.ts to bind: uWS method and pattern, and its handler. */
export interface RouteSpec {
  method: Method;
  pattern: string;
  handler: RouteHandler;
}
