import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cachedEvaluation, readinessAnswer, runCheck, type CheckResult, type ReadinessCheck } from '@fluxgate/contracts';
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger.js';

/**
 * The control plane's HTTP listener (node:http: it is not a hot path). GET /healthz answers
 * liveness with the guard's role; GET /readyz says whether Redis and Postgres answer, and why not
 * (contracts/readiness.ts); GET /metrics is Prometheus text behind the admin bearer token;
 * /mcp is the MCP server (mcp/http.ts: its own Host, Origin and token checks).
 */
export interface HttpDeps {
  registry: Registry;
  /** The admin token now (null: none configured yet, so /metrics refuses everyone). */
  adminToken: () => string | null;
  health: () => Record<string, unknown>;
  /** /readyz: Redis (the guard, the lease, MCP's reads) and Postgres (null: not configured, which the control plane survives). */
  readiness?: { redis: ReadinessCheck; postgres: ReadinessCheck | null; timeoutMs?: number; cacheMs?: number };
  log: Logger;
  /** The /mcp handler (absent: 404). */
  mcp?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

/**
 * Constant-time comparison of a presented bearer token with the configured one: both are hashed
 * first so the comparison takes the same time whatever their lengths (timingSafeEqual needs
 * equal lengths, and comparing lengths first would leak the token's length).
 */
export function bearerMatches(header: string | undefined, expected: string | null): boolean {
  if (!expected || !header) return false;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!m?.[1]) return false;
  const a = createHash('sha256').update(m[1]).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    ...headers,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
const error = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void =>
  send(res, status, JSON.stringify({ error: { code, message } }), headers);

export function createHttpServer(deps: HttpDeps): Server {
  const readiness = deps.readiness;
  const evaluate = readiness
    ? cachedEvaluation(async (): Promise<Record<string, CheckResult>> => {
        const timeoutMs = readiness.timeoutMs ?? 1_000;
        const [redis, postgres] = await Promise.all([
          runCheck(readiness.redis, timeoutMs),
          readiness.postgres
            ? runCheck(readiness.postgres, timeoutMs)
            : Promise.resolve<CheckResult>({ status: 'ok', reason: 'not configured' }),
        ]);
        return { redis, postgres };
      }, readiness.cacheMs ?? 1_000)
    : null;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/readyz' && evaluate) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return error(res, 405, 'method_not_allowed', 'use GET', { allow: 'GET, HEAD' });
      const answer = readinessAnswer(await evaluate());
      return send(res, answer.status, JSON.stringify({ ...answer.body, role: deps.health()['role'] }));
    }
    if (path === '/healthz' || path === '/health') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return error(res, 405, 'method_not_allowed', 'use GET', { allow: 'GET, HEAD' });
      return send(res, 200, JSON.stringify({ status: 'ok', ...deps.health() }));
    }
    if (path === '/metrics') {
      if (req.method !== 'GET') return error(res, 405, 'method_not_allowed', 'use GET', { allow: 'GET' });
      if (!bearerMatches(req.headers.authorization, deps.adminToken())) {
        // RFC 6750 §3: a protected resource names its scheme in WWW-Authenticate.
        return error(res, 401, 'unauthorized', 'a valid admin bearer token is required', {
          'www-authenticate': 'Bearer realm="fluxgate-control-plane"',
        });
      }
      const body = await deps.registry.metrics();
      return send(res, 200, body, { 'content-type': deps.registry.contentType });
    }
    if (path === '/mcp' && deps.mcp) return deps.mcp(req, res);
    return error(res, 404, 'not_found', `no route for ${req.method ?? 'GET'} ${path}`);
  };
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.log.error({ err }, 'control-plane HTTP handler failed');
      if (!res.headersSent) error(res, 500, 'internal_error', 'internal error');
      else res.destroy();
    });
  });
}

export async function listen(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
