import { ZodError, type z } from 'zod';
import { GatewayError, isGatewayError } from '../errors.js';
import { parseInput, parseJson } from '../http/json-input.js';
import type { Logger } from '../log/logger.js';
import { StoreError } from '../store/errors.js';
import type { RouteContext, RouteHandler } from './context.js';
import { sendError } from './respond.js';

/**
 * What every admin route that changes state shares: expected refusals (unknown key, over the
 * cap, invalid input) become clear 4xx answers; a failing Redis or Postgres is 503 with no detail
 * of the failure (it may hold a connection string), logged instead.
 */
export function adminHandler(log: Logger, what: string, fn: (ctx: RouteContext) => Promise<void>): RouteHandler {
  return async (ctx) => {
    try {
      await fn(ctx);
    } catch (e) {
      const err = asAdminError(e);
      if (err) return sendError(ctx.sink, err, 'plain');
      log.warn({ err: (e as Error).message, path: ctx.req.path }, `${what} failed`);
      sendError(
        ctx.sink,
        new GatewayError('service_unavailable', 'Redis or Postgres is unavailable; retry shortly.', { cause: e }),
        'plain',
      );
    }
  };
}

function asAdminError(e: unknown): GatewayError | null {
  if (isGatewayError(e)) return e;
  if (e instanceof StoreError) {
    if (e.code === 'not_found') return new GatewayError('not_found', e.message);
    if (e.code === 'penalty_over_cap') return new GatewayError('penalty_over_cap', e.message);
    return new GatewayError('bad_request', e.message);
  }
  if (e instanceof ZodError) {
    const issue = e.issues[0];
    return new GatewayError(
      'bad_request',
      `${issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''}${issue?.message ?? 'invalid input'}`,
    );
  }
  return null;
}

/**
 * The JSON body of an admin request. Call it before the handler's first await: uWS hands body
 * bytes only to a reader that already exists.
 */
export function jsonBody<S extends z.ZodType>(ctx: RouteContext, schema: S, maxBytes = 16 * 1024): Promise<z.infer<S>> {
  const parsed = ctx.readBody(maxBytes).then((bytes) => parseInput(schema, parseJson(bytes)));
  // A handler may answer without awaiting it (a bad path); the discarded body must not become an
  // unhandled rejection, which would end the process.
  parsed.catch(() => undefined);
  return parsed;
}

/** A boolean query flag (`?dryRun=true`): absent is false; anything but true/false/1/0 is a 400. */
export function queryFlag(query: string, name: string): boolean {
  const v = new URLSearchParams(query).get(name);
  if (v === null || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1' || v === '') return true;
  throw new GatewayError('bad_request', `${name}: expected true or false`);
}

export const queryParam = (query: string, name: string): string | null => new URLSearchParams(query).get(name);

/** The path segment after `prefix`, URL-decoded ('' when it cannot be decoded). */
export function pathTail(path: string, prefix: string): string {
  try {
    return decodeURIComponent(path.slice(prefix.length));
  } catch {
    return '';
  }
}
