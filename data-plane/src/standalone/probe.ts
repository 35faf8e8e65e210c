import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * The status of one GET to `url`, or null when nothing answered in time (refused, reset, timed
 * out, not HTTP, or a certificate that does not verify when it must). The supervisor's only
 * HTTP client: liveness of its children and whether a model server answers at all, so any
 * status counts as an answer and the body is discarded.
 */
export function httpStatus(url: string, opts: { timeoutMs: number; insecureTls?: boolean }): Promise<number | null> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve(null);
      return;
    }
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    // Loopback liveness of our own data plane: its certificate may be self-signed or name another
    // host, and nothing secret is sent, so it is not verified there (and only there).
    const req = request(
      target,
      { method: 'GET', agent: false, timeout: opts.timeoutMs, rejectUnauthorized: opts.insecureTls !== true },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? null);
        req.destroy();
      },
    );
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(null));
    req.end();
  });
}

/** A host to connect to for a listener bound to `bind`: the wildcard addresses mean loopback here. */
export function connectHost(bind: string): string {
  if (bind === '0.0.0.0' || bind === '') return '127.0.0.1';
  if (bind === '::' || bind === '[::]') return '::1';
  return bind.replace(/^\[(.*)\]$/, '$1');
}

/** `host` as the authority part of a URL (IPv6 literals in brackets, RFC 3986 §3.2.2). */
export const urlHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);
