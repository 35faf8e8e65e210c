/**
 * GET/POST /dns-query (RFC 8484). HTTP concerns only: the DNS answer comes from
 * `resolver.answerQuery` (answer.ts), whose RCODE rides in a 200 (RFC 8484 §4.2.1: "A
 * successful HTTP response with a 2xx status code is used for any valid DNS response,
 * regardless of the DNS response code").
 *
 * - GET `?dns=<base64url, unpadded>` (§4.1; padding is tolerated), POST with
 *   `content-type: application/dns-message` (anything else: 415, §4.1).
 * - an `accept` that rules out application/dns-message (and application/*, and the wildcard): 406.
 * - Limits: request target (8 KiB default: 414), DNS message (4 KiB default: 413).
 * - Per-client token bucket (rate-limit.ts): 429 with Retry-After.
 * - Not a DNS message: 400. Every response is `cache-control: max-age=<smallest TTL>` (§5.1).
 */
import { GatewayError } from '../errors.js';
import type { HeaderList, ResponseSink } from '../http/types.js';
import type { RouteContext, RouteHandler } from '../routes/context.js';
import { sendError } from '../routes/respond.js';
import type { QueryAnswer } from './answer.js';
import type { DnsMetrics, EndpointOutcome } from './metrics.js';
import { ClientRateLimiter, type RateLimitOptions } from './rate-limit.js';

export const DNS_MESSAGE = 'application/dns-message';

export interface DnsQueryRouteOptions {
  /** Largest DNS message accepted (POST body or decoded GET parameter). Default 4096. */
  maxMessageBytes?: number;
  /** Longest path + query for GET. Default 8192. */
  maxUrlBytes?: number;
  /** Per-client limit; null disables it. Default 20/s with a burst of 40. */
  rateLimit?: RateLimitOptions | null;
  metrics?: DnsMetrics | null;
}

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Statuses the error catalogue has no entry for, in its plain JSON shape. */
function sendStatus(sink: ResponseSink, status: number, code: string, message: string, headers: HeaderList = []): void {
  if (sink.finished || sink.headersSent) return;
  sink.send(
    status,
    [['content-type', 'application/json'], ...headers],
    JSON.stringify({ error: { message, type: 'invalid_request_error', code } }),
  );
}

/** True unless the client sent an Accept that rules out application/dns-message. */
export function acceptsDnsMessage(accept: string | undefined): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  return accept.split(',').some((part) => {
    const [range = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) return false;
    return range === DNS_MESSAGE || range === 'application/*' || range === '*/*';
  });
}

export function dnsQueryRoute(
  resolver: { answerQuery(packet: Uint8Array): Promise<QueryAnswer> },
  opts: DnsQueryRouteOptions = {},
): RouteHandler {
  const maxMessage = opts.maxMessageBytes ?? 4096;
  const maxUrl = opts.maxUrlBytes ?? 8192;
  const limiter = opts.rateLimit === null ? null : new ClientRateLimiter(opts.rateLimit ?? { ratePerSec: 20, burst: 40 });
  const metrics = opts.metrics ?? null;
  const count = (o: EndpointOutcome) => metrics?.endpointRequests.labels(o).inc();

  return async (ctx: RouteContext) => {
    const { method, headers, path, query } = ctx.req;
    // Before any await: uWS only hands body bytes to a reader that exists when they arrive.
    const bodyRead = method === 'POST' ? ctx.readBody(maxMessage) : null;
    const { sink } = ctx;

    if (method !== 'GET' && method !== 'POST') {
      return sendError(sink, new GatewayError('method_not_allowed'), 'plain', [['allow', 'GET, POST']]);
    }
    const verdict = limiter?.take(ctx.req.remoteAddress);
    if (verdict !== undefined && !verdict.ok) {
      count('rate_limited');
      const retry = String(verdict.retryAfterSec);
      return sendError(sink, new GatewayError('rate_limit_exceeded', undefined, { headers: [['retry-after', retry]] }), 'plain');
    }
    if (!acceptsDnsMessage(headers.get('accept'))) {
      count('not_acceptable');
      return sendStatus(sink, 406, 'not_acceptable', `This endpoint only produces ${DNS_MESSAGE}.`);
    }

    let packet: Uint8Array;
    if (method === 'GET') {
      if (path.length + query.length + 1 > maxUrl) {
        count('too_large');
        return sendStatus(sink, 414, 'uri_too_long', `The request target is longer than ${maxUrl} bytes; use POST.`);
      }
      const dns = new URLSearchParams(query).get('dns');
      if (dns === null || dns === '' || !BASE64URL.test(dns)) {
        count('bad_request');
        return sendError(
          sink,
          new GatewayError('bad_request', 'Expected ?dns= with a base64url-encoded DNS message (RFC 8484 §4.1).'),
          'plain',
        );
      }
      packet = Buffer.from(dns, 'base64url');
      if (packet.length > maxMessage) {
        count('too_large');
        return sendError(sink, new GatewayError('payload_too_large', `The DNS message is larger than ${maxMessage} bytes.`), 'plain');
      }
    } else {
      const type = (headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== DNS_MESSAGE) {
        count('unsupported_media_type');
        return sendStatus(sink, 415, 'unsupported_media_type', `POST bodies must be ${DNS_MESSAGE} (RFC 8484 §4.1).`);
      }
      try {
        packet = await (bodyRead as Promise<Uint8Array>);
      } catch (err) {
        if (sink.aborted) return;
        count(err instanceof GatewayError && err.code === 'payload_too_large' ? 'too_large' : 'bad_request');
        return sendError(sink, err, 'plain');
      }
    }

    const answer = await resolver.answerQuery(packet);
    if (answer.kind === 'malformed') {
      count('bad_request');
      return sendError(sink, new GatewayError('bad_request', 'The body is not a DNS message.'), 'plain');
    }
    count('answered');
    if (sink.finished) return;
    sink.send(
      200,
      [
        ['content-type', DNS_MESSAGE],
        ['cache-control', `max-age=${answer.ttl}`],
      ],
      answer.body,
    );
  };
}
