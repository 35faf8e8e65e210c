import { SocketAddress } from 'node:net';
import type { Exchange } from './exchange.js';
import type { RequestSnapshot } from './types.js';
import type { HttpRequest, HttpResponse } from './uws.js';

const decoder = new TextDecoder();
const DIGITS = /^\d+$/;

/**
 * Copy everything a route needs out of uWS's request. Call it first thing in the uWS handler:
 * `req` is stack-allocated and dies when the handler returns or first awaits
 * (docs/index.d.ts: "HttpRequest is stack allocated and only accessible during the callback").
 * What the body reader and sink need from the head goes into `exchange` (see exchange.ts).
 */
export function snapshotRequest(req: HttpRequest, res: HttpResponse, exchange: Exchange): RequestSnapshot {
  const receivedAt = performance.now();
  const headers = new Map<string, string>();
  let conflictingLength = false;
  // uWS hands header names already lower-cased. RFC 9110 §5.3: repeated fields combine with
  // ", "; Cookie is the exception and combines with "; " (RFC 6265 §5.4). Repeated identical
  // Content-Length values fold into one (RFC 9110 §8.6); different ones are a framing error.
  req.forEach((name, value) => {
    const prev = headers.get(name);
    if (prev === undefined) headers.set(name, value);
    else if (name === 'content-length') conflictingLength ||= value !== prev;
    else headers.set(name, `${prev}${name === 'cookie' ? '; ' : ', '}${value}`);
  });

  const length = headers.get('content-length');
  exchange.contentLength = length !== undefined && DIGITS.test(length) ? Number(length) : undefined;
  // RFC 9112 §6.3: a request has a body only with Transfer-Encoding or a Content-Length.
  exchange.hasBody = headers.has('transfer-encoding') || (exchange.contentLength ?? 0) > 0;
  exchange.framingError = framingError(headers, conflictingLength);

  return {
    // This build lower-cases even getCaseSensitiveMethod(); uWS only routes upper-case methods.
    method: req.getMethod().toUpperCase(),
    path: req.getUrl(),
    // getQuery() is undefined (not '') when there is no query string.
    query: (req.getQuery() as string | undefined) ?? '',
    headers,
    remoteAddress: normaliseAddress(decoder.decode(res.getRemoteAddressAsText())),
    receivedAt,
  };
}

/**
 * Request heads that cannot be read one way only (RFC 9112 §3.2, §6.1, §6.3): a server and the
 * proxies around it could each see a different body length or target host, which is how
 * requests are smuggled. Each case is answered 400 and the connection closed. (This uWS build already drops, without
 * calling any handler, a request with both Content-Length and Transfer-Encoding, and closes the
 * connection after a Content-Length that is not a number; the checks stay for any build that
 * does not.)
 */
export function framingError(headers: ReadonlyMap<string, string>, conflictingLength: boolean): string | null {
  if (conflictingLength) return 'two different Content-Length values';
  // The snapshot joins repeated fields with ", ", and a host (RFC 3986 reg-name or IP literal
  // with an optional port) never contains one: a comma means two Host lines (RFC 9112 §3.2).
  if (headers.get('host')?.includes(',')) return 'more than one Host header';
  const te = headers.get('transfer-encoding');
  const length = headers.get('content-length');
  if (te !== undefined && length !== undefined) return 'both Content-Length and Transfer-Encoding';
  // uWS de-chunks whatever coding is named; anything but a single chunked leaves the length unknown.
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return 'a Transfer-Encoding other than chunked';
  if (length !== undefined && !DIGITS.test(length)) return 'a Content-Length that is not a number';
  return null;
}

/**
 * uWS prints IPv6 as eight zero-padded groups ("0000:…:ffff:7f00:0001"); give the canonical
 * RFC 5952 text, and plain dotted IPv4 for IPv4-mapped addresses (a dual-stack listener sees
 * IPv4 clients as ::ffff:a.b.c.d), so per-IP limits and logs see one spelling per client.
 */
export function normaliseAddress(text: string): string {
  if (!text.includes(':')) return text;
  let canonical: string;
  try {
    canonical = new SocketAddress({ address: text, family: 'ipv6' }).address;
  } catch {
    return text;
  }
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(canonical);
  return mapped?.[1] ?? canonical;
}
