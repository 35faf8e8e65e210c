import { GatewayError } from '../errors.js';
import type { IpBlocks } from '../auth/ip-blocks.js';
import type { RouteHandler } from './context.js';
import { flavorOf, sendError } from './respond.js';

/**
 * Refuses a blocked client before the route runs: before authentication and before any body byte
 * is read (the sink then closes the connection, see http/exchange.ts). 403 in the family's error
 * shape (OpenAI on /v1, Ollama on /api, plain JSON elsewhere) with Retry-After until the block
 * ends (RFC 9110 §10.2.3: delay-seconds). Wrap it inside withClientAddress, so the address is the
 * client's and not a trusted proxy's.
 */
export function withIpBlock(blocks: Pick<IpBlocks, 'check'>, handler: RouteHandler, now: () => number = Date.now): RouteHandler {
  return (ctx) => {
    const block = blocks.check(ctx.req.remoteAddress);
    if (!block) return handler(ctx);
    const seconds = Math.max(1, Math.ceil((block.expiresAt - now()) / 1000));
    const err = new GatewayError('ip_blocked', undefined, { headers: [['retry-after', String(seconds)]] });
    sendError(ctx.sink, err, flavorOf(ctx.req.path), [['x-request-id', ctx.requestId]]);
  };
}
