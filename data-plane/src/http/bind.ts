import { randomUUID } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { asGatewayError, flavorOf, GatewayError, toWireBody } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { readBody } from './body.js';
import { openExchange } from './exchange.js';
import { snapshotRequest } from './request.js';
import { createSink } from './sink.js';
import type { RouteContext, RouteHandler } from './types.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'del' | 'head' | 'options' | 'any';

/** Accept a caller's request id only when it is short and printable; otherwise mint one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Adapt a RouteHandler to uWS. Everything uWS-specific happens synchronously here, before the
 * handler can await: the request is copied, the sink registers onAborted, and the body reader
 * is available to be started at once.
 */
export function bind(app: TemplatedApp, method: Method, pattern: string, handler: RouteHandler, log: Logger): void {
  app[method](pattern, (res: HttpResponse, req: HttpRequest) => {
    const exchange = openExchange(res);
    const snapshot = snapshotRequest(req, res, exchange);
    const sink = createSink(res, exchange, { head: snapshot.method === 'HEAD' });
    const incomingId = snapshot.headers.get('x-request-id');
    const ctx: RouteContext = {
      req: snapshot,
      sink,
      readBody: (limit: number) => readBody(res, exchange, limit),
      requestId: incomingId && REQUEST_ID.test(incomingId) ? incomingId : randomUUID(),
    };
    if (exchange.framingError !== null) {
      // RFC 9112 §6.3: the body's length cannot be known, so neither can where the next request
      // starts: 400 and close. Answered from the next turn, not from inside uWS's parse of this
      // read: uWS would go on to dispatch a request that follows the first Content-Length in the
      // same read (and keep the connection for it, Connection: close or not), which is the
      // smuggled request. With this response still pending it drops the connection instead.
      exchange.closeAfterResponse = true;
      const err = new GatewayError('bad_request', `The request head is invalid: ${exchange.framingError}.`);
      const body = toWireBody(err, flavorOf(snapshot.path));
      setImmediate(() =>
        sink.send(
          err.status,
          [
            ['content-type', 'application/json'],
            ['x-request-id', ctx.requestId],
          ],
          body,
        ),
      );
      return;
    }
    const fail = (e: unknown) => {
      const err = asGatewayError(e);
      if (err.code === 'internal_error') log.error({ err: e, path: snapshot.path, requestId: ctx.requestId }, 'unhandled route error');
      if (sink.finished) return;
      if (sink.headersSent) return sink.close();
      sink.send(
        err.status,
        [
          ['content-type', 'application/json'],
          ['x-request-id', ctx.requestId],
        ],
        toWireBody(err, 'plain'),
      );
    };
    try {
      const result = handler(ctx);
      if (result) result.catch(fail);
    } catch (e) {
      fail(e);
    }
  });
}
