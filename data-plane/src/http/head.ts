/** Status line and response headers as uWS writes them. */
import { STATUS_CODES } from 'node:http';
import type { HeaderList } from './types.js';
import type { HttpResponse } from './uws.js';

// RFC 9110 §5.1 field names are tokens and §5.5 field values never hold CR, LF or NUL:
// anything else could split the response.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const UNSAFE_VALUE = /[\r\n\0]/;
// uWS writes Date and the framing (Content-Length or Transfer-Encoding, RFC 9112 §6) itself; a
// second copy from the caller would make the message ambiguous. Connection and Keep-Alive are
// hop-by-hop (RFC 9110 §7.6.1); a "close" is honoured through uWS's own flag instead.
const OWNED = new Set(['content-length', 'transfer-encoding', 'date', 'connection', 'keep-alive']);

/** 1xx, 204 and 304 responses carry no body (RFC 9110 §6.4.1). */
export const isBodiless = (status: number): boolean => status < 200 || status === 204 || status === 304;

/** uWS's writeStatus wants the whole "200 OK" text. */
function statusText(status: number): string {
  const code = Number.isInteger(status) && status >= 100 && status <= 999 ? status : 500;
  return `${code} ${STATUS_CODES[code] ?? 'Unknown'}`;
}

/** Upper bound of the bytes the status line and headers take in uWS's cork buffer. */
export function headBytes(status: number, headers: HeaderList): number {
  let n = 11 + statusText(status).length;
  for (const [name, value] of headers) n += Buffer.byteLength(name) + Buffer.byteLength(value) + 4;
  return n;
}

/** Did the caller ask for Connection: close? */
export function wantsClose(headers: HeaderList): boolean {
  return headers.some(([name, value]) => name.toLowerCase() === 'connection' && /(^|,)\s*close\s*(,|$)/i.test(value));
}

/** Write the status line and the caller's headers (call inside res.cork). */
export function writeHead(res: HttpResponse, status: number, headers: HeaderList): void {
  res.writeStatus(statusText(status));
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (OWNED.has(lower) || !TOKEN.test(name) || UNSAFE_VALUE.test(value)) continue;
    res.writeHeader(lower, value);
  }
}
