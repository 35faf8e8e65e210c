/**
 * Header filtering between the client and an upstream, both ways.
 *
 * A proxy is a separate HTTP hop: headers that describe one connection must not cross it, and
 * neither may credentials that belong to the other side.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderList } from '../http/types.js';

/**
 * Hop-by-hop fields. RFC 9110 §7.6.1: a proxy MUST remove Connection and every field it names,
 * and SHOULD remove Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade even when not
 * named. Trailer (RFC 9110 §6.6.2) announces trailers of this hop's framing. Proxy-Authorization
 * and Proxy-Authenticate (RFC 9110 §11.7) are consumed by / addressed to the proxy itself.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/** Request fields we never forward, besides hop-by-hop ones. */
const REQUEST_DROP: ReadonlySet<string> = new Set([
  // The client's credentials are for Fluxgate; the upstream's own is injected instead (§3 Proxy).
  'authorization',
  'x-api-key',
  'cookie',
  // RFC 9110 §7.2: Host identifies the upstream authority; undici sets it from the origin.
  'host',
  // RFC 9110 §8.6: the length of the body we send (possibly rewritten); undici computes it.
  'content-length',
  // RFC 9110 §10.1.1: the body was already read whole, so 100-continue was settled at our hop
  // (and undici rejects the field).
  'expect',
  // Replaced below: we must read the bytes to count usage.
  'accept-encoding',
  // Replaced below when the gateway knows them.
  'x-forwarded-for',
  'x-request-id',
  // Client-written claims about the client hop (RFC 7239 Forwarded, the de facto X-Forwarded-*
  // family below, X-Real-IP and the CDN variants): an upstream that trusts them for the
  // client's address, scheme or host would be trusting the client. The gateway states the
  // facts itself (X-Forwarded-For, X-Forwarded-Proto).
  'forwarded',
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  // Path and method overrides that some frameworks honour (Symfony, IIS, Express
  // method-override): they would turn an allowed (method, path) into another (proxy/surface.ts).
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
]);

/** X-Forwarded-Host, -Proto, -Port, -Prefix, -Server, …: never the client's to set. */
const X_FORWARDED = 'x-forwarded-';

/** Response fields we never forward, besides hop-by-hop ones. */
const RESPONSE_DROP: ReadonlySet<string> = new Set([
  // Framing of the upstream hop; the sink frames the client hop (RFC 9112 §6). The length is
  // reported separately to the handler so a known-length body can still be sent as such.
  'content-length',
  // Cookies set by an upstream would be scoped to the gateway's origin (RFC 6265 §5.3) and could
  // clobber Fluxgate's own session cookie.
  'set-cookie',
  // RFC 7838 §2: Alt-Svc advertises alternatives for the upstream's origin, not the gateway's.
  'alt-svc',
]);

/** Names listed in a Connection field value (RFC 9110 §7.6.1: comma-separated tokens). */
function connectionNamed(value: string | undefined): ReadonlySet<string> | null {
  if (value === undefined || value === '') return null;
  const names = new Set<string>();
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '') names.add(name);
  }
  return names;
}

export interface RequestHeaderExtras {
  /**
   * The X-Forwarded-For value to send: the client's address, or behind trusted proxies the
   * chain from the client through them (routes/client-ip.ts). It replaces whatever the client
   * sent, and comes with `X-Forwarded-Proto: https` (the client hop is always TLS).
   */
  forwardedFor?: string | null;
  /** The gateway's request id, sent as X-Request-Id. */
  requestId?: string | null;
}

/**
 * Client headers (lower-case names) → flat `[name, value, name, value, …]` list for undici,
 * without credentials. The upstream credential is added per attempt by `withCredential`.
 */
export function filterRequestHeaders(headers: ReadonlyMap<string, string>, extras: RequestHeaderExtras = {}): string[] {
  const named = connectionNamed(headers.get('connection'));
  const out: string[] = [];
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || REQUEST_DROP.has(name) || named?.has(name) === true || name.startsWith(X_FORWARDED)) continue;
    out.push(name, value);
  }
  // RFC 9110 §12.5.3: without Accept-Encoding any coding is acceptable, so ask explicitly for
  // identity: usage counting has to read the response bytes.
  out.push('accept-encoding', 'identity');
  if (extras.forwardedFor) out.push('x-forwarded-for', extras.forwardedFor, 'x-forwarded-proto', 'https');
  const requestId = extras.requestId ?? headers.get('x-request-id');
  if (requestId) out.push('x-request-id', requestId);
  return out;
}

/** The per-upstream `authorization` value, built once per upstream. */
export function bearer(credential: string | null): string | null {
  return credential === null ? null : `Bearer ${credential}`;
}

/** Adds the upstream's credential (RFC 9110 §11.6.2) to a filtered list; never mutates `base`. */
export function withCredential(base: readonly string[], authorization: string | null): string[] {
  return authorization === null ? base.slice() : [...base, 'authorization', authorization];
}

export interface FilteredResponseHeaders {
  headers: HeaderList;
  /** The upstream's Content-Length when it sent one (valid, non-negative integer), else null. */
  contentLength: number | null;
}

/** Upstream response headers (undici's parsed object, lower-case names) → client header list. */
export function filterResponseHeaders(headers: IncomingHttpHeaders): FilteredResponseHeaders {
  const connection = headers['connection'];
  const named = connectionNamed(Array.isArray(connection) ? connection.join(',') : connection);
  const out: Array<readonly [string, string]> = [];
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || RESPONSE_DROP.has(name) || named?.has(name) === true) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const v of value) out.push([name, v]);
    } else {
      out.push([name, value]);
    }
  }
  return { headers: out, contentLength: parseContentLength(headers['content-length']) };
}

function parseContentLength(value: string | string[] | undefined): number | null {
  // RFC 9110 §8.6: a list of identical values may be folded; anything else is not a length.
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || !/^\d{1,15}$/.test(v.trim())) return null;
  return Number(v.trim());
}
