import { GatewayError } from '../errors.js';
import { headProblem } from '../http/head-check.js';
import type { RouteHandler } from './context.js';
import { flavorOf, sendError } from './respond.js';

/**
 * Refuse a malformed head before the route sees it: 400 in the family's error shape, and the
 * connection closed (RFC 9112 §6.3: the body's length cannot be trusted, so nothing that
 * follows on this connection can be read as a request).
 */
export function refuseMalformedHead(handler: RouteHandler): RouteHandler {
  return (ctx) => {
    const problem = headProblem(ctx.req);
    if (problem === null) return handler(ctx);
    sendError(ctx.sink, new GatewayError('bad_request', problem), flavorOf(ctx.req.path), [
      ['x-request-id', ctx.requestId],
      ['connection', 'close'],
    ]);
  };
}
