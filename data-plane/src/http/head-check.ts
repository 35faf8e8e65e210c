/**
 * Request-head rules that this uWS build does not enforce itself but hands to the route
 * (its parser refuses most malformed heads by never calling a route at all, see
 * test/e2e/malformed-heads.test.ts). Each is a MUST-answer-400 of RFC 9112.
 */
import type { RequestSnapshot } from './types.js';

/** Why the head must be refused with 400 and the connection closed, or null when it is fine. */
export function headProblem(req: Pick<RequestSnapshot, 'headers'>): string | null {
  // The snapshot joins repeated fields with ", " and a host (RFC 3986 reg-name or IP literal,
  // with an optional port) never contains one in practice: a comma means two Host lines.
  // RFC 9112 §3.2: more than one Host is a 400.
  if (req.headers.get('host')?.includes(',')) return 'The request has more than one Host header.';
  const te = req.headers.get('transfer-encoding');
  // uWS reads any Transfer-Encoding as chunked. RFC 9112 §6.3: when chunked is not the final
  // coding the length cannot be known, 400 and close; a coding before chunked (gzip, …) is one
  // we do not implement (§6.1 suggests 501; a client error here is not a server fault, so 400).
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return 'Transfer-Encoding must be exactly "chunked".';
  return null;
}
