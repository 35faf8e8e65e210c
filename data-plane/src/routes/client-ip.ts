import type { RequestSnapshot } from '../http/types.js';
import type { RouteHandler } from './context.js';

/**
 * Behind a reverse proxy (the compose nginx) every socket peer is the proxy, so per-IP throttles
 * and counters would lump all clients together. X-Forwarded-For is trusted only when the peer
 * is one of TRUSTED_PROXIES, and then the rightmost address not itself a trusted proxy is the
 * client (the leftmost entries are whatever the client chose to send).
 */
export function clientAddress(req: RequestSnapshot, trusted: ReadonlySet<string>): string {
  if (!trusted.has(req.remoteAddress)) return req.remoteAddress;
  const chain = (req.headers.get('x-forwarded-for') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = chain.length - 1; i >= 0; i--) {
    const hop = chain[i]!;
    if (!trusted.has(hop)) return hop.slice(0, 64);
  }
  return req.remoteAddress;
}

/** Wrap a handler so `ctx.req.remoteAddress` is the client's address; identity when no proxy is trusted. */
export function withClientAddress(trusted: ReadonlySet<string>, handler: RouteHandler): RouteHandler {
  if (trusted.size === 0) return handler;
  return (ctx) => {
    const address = clientAddress(ctx.req, trusted);
    if (address === ctx.req.remoteAddress) return handler(ctx);
    return handler({ ...ctx, req: { ...ctx.req, remoteAddress: address } });
  };
}
