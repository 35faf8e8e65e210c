import { GatewayError } from '../errors.js';
import type { HeaderList, ResponseSink } from '../http/types.js';
import { SPA_SECURITY_HEADERS } from '../static/headers.js';
import { prepareEncodings, type Site, type StaticFile } from '../static/site.js';
import type { RouteHandler } from './context.js';
import { sendError } from './respond.js';

/**
 * The public listener's last route (`/*`): the SPA's files, and index.html for its client-side
 * routes (`/keys`, `/operator/incidents`, …), so a reload or a shared link opens the right page.
 *
 * What never becomes index.html, so API clients keep their own answers: the API families and
 * their neighbours (`/v1`, `/api`, `/portal`, `/dns-query`, `/health*`, `/readyz`, with or
 * without anything after them), `/assets/*` (a missing asset is a 404, not a page that would
 * be parsed as a script), paths with a dot or any other character a route name never has, and
 * requests that do not ask for HTML (`Accept` without `text/html`: a browser navigation always
 * sends it; a script or SDK calling a wrong path gets the JSON 404 it can read). Other methods
 * on a file are 405; everything else that is unknown stays the plain JSON 404.
 */
const RESERVED = /^\/(?:v1|api|portal|dns-query|assets|readyz)(?:\/|$)|^\/health/;
const CLIENT_ROUTE = /^(?:\/[A-Za-z0-9_-]+)+\/?$/;
const ALLOW: HeaderList = [['allow', 'GET, HEAD']];

const notFound = new GatewayError('not_found');

export function staticRoute(site: Site | null): RouteHandler {
  return ({ req, sink }) => {
    const { path, method } = req;
    if (site === null) return sendError(sink, notFound, 'plain');
    const exact = path === '/' ? site.index : site.files.get(path);
    if (method !== 'GET' && method !== 'HEAD') {
      return sendError(sink, exact ? new GatewayError('method_not_allowed', undefined, { headers: ALLOW }) : notFound, 'plain');
    }
    const route = !RESERVED.test(path) && CLIENT_ROUTE.test(path) && acceptsHtml(req.headers.get('accept'));
    const file = exact ?? (route ? site.index : undefined);
    if (!file) return sendError(sink, notFound, 'plain');
    serve(file, req.headers, sink);
  };
}

function serve(file: StaticFile, headers: ReadonlyMap<string, string>, sink: ResponseSink): void {
  prepareEncodings(file);
  const varies = file.compressible;
  const common: Array<readonly [string, string]> = [['cache-control', file.cacheControl], ['etag', file.etag], ...SPA_SECURITY_HEADERS];
  if (varies) common.push(['vary', 'accept-encoding']);
  if (etagMatches(headers.get('if-none-match'), file.etag)) return sink.send(304, common, '');
  const coding = pickEncoding(headers.get('accept-encoding'), file);
  const body = coding === 'br' ? file.br! : coding === 'gzip' ? file.gzip! : file.body;
  const out: HeaderList =
    coding === null ? [['content-type', file.type], ...common] : [['content-type', file.type], ['content-encoding', coding], ...common];
  sink.send(200, out, body);
}

/** `name;q=x, …` (Accept, Accept-Encoding) → name → weight; no q means 1 (RFC 9110 §12.4.2). */
function weights(header: string): Map<string, number> {
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const qp = params.find((p) => p.startsWith('q='));
    const value = qp === undefined ? 1 : Number(qp.slice(2));
    if (name !== '') q.set(name, Number.isFinite(value) ? value : 0);
  }
  return q;
}

const acceptsHtml = (accept: string | undefined): boolean => accept !== undefined && (weights(accept).get('text/html') ?? 0) > 0;

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/` does not matter; `*` matches any. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const opaque = etag.replace(/^W\//, '');
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag.replace(/^W\//, '') === opaque;
  });
}

/** br, then gzip, then none; a coding listed with q=0 is refused (RFC 9110 §12.5.3). */
export function pickEncoding(header: string | undefined, file: Pick<StaticFile, 'br' | 'gzip'>): 'br' | 'gzip' | null {
  if (header === undefined) return null;
  const q = weights(header);
  const ok = (c: string): boolean => (q.get(c) ?? q.get('*') ?? 0) > 0;
  if (file.br !== null && ok('br')) return 'br';
  if (file.gzip !== null && ok('gzip')) return 'gzip';
  return null;
}
