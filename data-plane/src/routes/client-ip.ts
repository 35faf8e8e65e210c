import { isIP } from 'node:net';
import type { RequestSnapshot } from '../http/types.js';
import type { AddressSet } from '../net/cidr-set.js';
import type { RouteHandler } from './context.js';

export interface ClientHops {
  /** The client's address: per-IP throttles, counters and logs use it. */
  client: string;
  /**
   * X-Forwarded-For for the upstream when a trusted proxy is in front: the client, then every
   * trusted hop after it, then the peer. Undefined when that would be just the peer.
   */
  forwardedFor: string | undefined;
}

/**
 * Behind a reverse proxy (the compose nginx) every socket peer is the proxy, so per-IP throttles
 * and counters would lump all clients together. X-Forwarded-For is believed only when the peer
 * is in TRUSTED_PROXIES (addresses or CIDRs), and then only from the right: each hop is what
 * the proxy to its right saw, so the rightmost hop that is not itself a trusted proxy is the
 * client, and everything to its left is whatever the client chose to send (nginx realip with
 * real_ip_recursive does the same). When every hop is trusted the leftmost is the best known
 * client. A trusted proxy writes its peer's address, so a hop that is not an IP address was
 * not written by one: the chain stops at the trusted hop to its right.
 */
export function resolveClient(req: RequestSnapshot, trusted: AddressSet): ClientHops {
  const peer = req.remoteAddress;
  if (!trusted.has(peer)) return { client: peer, forwardedFor: undefined };
  const header = req.headers.get('x-forwarded-for');
  if (header === undefined) return { client: peer, forwardedFor: undefined };
  const chain = header
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  let first = chain.length;
  while (first > 0) {
    const hop = chain[first - 1]!;
    if (isIP(hop) === 0) break;
    first--;
    if (!trusted.has(hop)) break;
  }
  if (first === chain.length) return { client: peer, forwardedFor: undefined };
  const kept = chain.slice(first);
  return { client: kept[0]!, forwardedFor: [...kept, peer].join(', ') };
}

/** The client's address (see resolveClient). */
export const clientAddress = (req: RequestSnapshot, trusted: AddressSet): string => resolveClient(req, trusted).client;

/**
 * Wrap a handler so `ctx.req.remoteAddress` is the client's address and `ctx.req.forwardedFor`
 * the chain for the upstream; identity when no proxy is trusted.
 */
export function withClientAddress(trusted: AddressSet, handler: RouteHandler): RouteHandler {
  if (trusted.size === 0) return handler;
  return (ctx) => {
    const { client, forwardedFor } = resolveClient(ctx.req, trusted);
    if (forwardedFor === undefined) return handler(ctx);
    return handler({ ...ctx, req: { ...ctx.req, remoteAddress: client, forwardedFor } });
  };
}
