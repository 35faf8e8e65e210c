import { randomUUID } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { asGatewayError, toWireBody } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { RouteContext, RouteHandler } from '../routes/context.js';
import { readBody } from './body.js';
import { snapshotRequest } from './request.js';
import { createSink } from './sink.js';

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
    const snapshot = snapshotRequest(req, res);
    const sink = createSink(res, { head: snapshot.method === 'HEAD' });
    const incomingId = snapshot.headers.get('x-request-id');
    const ctx: RouteContext = {
      req: snapshot,
      sink,
      readBody: (limit: number) => readBody(res, limit),
      requestId: incomingId && REQUEST_ID.test(incomingId) ? incomingId : randomUUID(),
    };
    const fail = (e: unknown) => {
      const err = asGatewayError(e);
      if (err.code === 'internal_error') log.error({ err: e, path: snapshot.path, requestId: ctx.requestId }, 'unhandled route error');
      if (sink.finished) return;
      if (sink.headersSent) return sink.close();
      sink.send(err.status, [['content-type', 'application/json'], ['x-request-id', ctx.requestId]], toWireBody(err, 'plain'));
    };
    try {
      const result = handler(ctx);
      if (result) result.catch(fail);
    } catch (e) {
      fail(e);
    }
  });
}
