/**
 * Drives the portal's route handlers directly: a RouteContext over a recording ResponseSink,
 * against real Postgres and Redis. The fake context also checks the uWS body rule: a handler
 * that reads a body must start reading before it first yields.
 */
import { createLogger, type Logger } from '../../src/log/logger.js';
import { GatewayError } from '../../src/errors.js';
import type { HeaderList, RequestSnapshot, ResponseSink } from '../../src/http/types.js';
import { createCounters, type Counters } from '../../src/metrics/counters.js';
import { createPortalRoutes, type PortalDeps, type PortalRoute } from '../../src/portal/routes.js';
import { connectTestRedis, createTestDatabase, type TestDatabase, type TestRedis } from '../support/services.js';

export const JWT_SECRET = 'test-portal-secret-0123456789abcdef0123456789';
export const STRONG_PASSWORD = 'violet-Tractor-harbour-93';

export interface Answer {
  status: number;
  headers: HeaderList;
  body: string;
  json: any;
  header(name: string): string | undefined;
  /** Whether the handler called readBody before its first await. */
  readBodySync: boolean;
}

export function recordingSink(): ResponseSink & { answer?: { status: number; headers: HeaderList; body: string } } {
  const sink = {
    aborted: false,
    headersSent: false,
    finished: false,
    bytesWritten: 0,
    answer: undefined as { status: number; headers: HeaderList; body: string } | undefined,
    onAbort() {},
    send(status: number, headers: HeaderList, body: Uint8Array | string) {
      if (sink.finished) throw new Error('sink written twice');
      const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
      sink.answer = { status, headers, body: text };
      sink.headersSent = sink.finished = true;
      sink.bytesWritten = Buffer.byteLength(text);
    },
    startStream() {
      throw new Error('portal routes never stream');
    },
    write(): boolean {
      throw new Error('portal routes never stream');
    },
    onDrain() {},
    end() {},
    close() {
      sink.finished = true;
    },
  };
  return sink;
}

export interface CallOptions {
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  query?: string;
  ip?: string;
}

export type Call = (method: 'GET' | 'POST' | 'DELETE', path: string, opts?: CallOptions) => Promise<Answer>;

/** Finds the route by method and uWS pattern (`:param` segments) and runs it once. */
export function caller(routes: readonly PortalRoute[]): Call {
  return async (method, path, opts = {}) => {
    const m = method === 'DELETE' ? 'del' : (method.toLowerCase() as 'get' | 'post');
    const route = routes.find((r) => r.method === m && new RegExp(`^${r.pattern.replace(/:[^/]+/g, '[^/]+')}$`).test(path));
    if (!route) throw new Error(`no portal route for ${method} ${path}`);
    const req: RequestSnapshot = {
      method,
      path,
      query: opts.query ?? '',
      headers: new Map(Object.entries(opts.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
      remoteAddress: opts.ip ?? '127.0.0.1',
      receivedAt: performance.now(),
    };
    const sink = recordingSink();
    const bytes = typeof opts.body === 'string' ? Buffer.from(opts.body) : (opts.body ?? new Uint8Array(0));
    let readBodyCalled = false;
    const ctx = {
      req,
      sink,
      requestId: 'test-request',
      readBody(limit: number) {
        readBodyCalled = true;
        if (bytes.length > limit)
          return Promise.reject(new GatewayError('payload_too_large', `The request body is larger than the limit of ${limit} bytes.`));
        return Promise.resolve(bytes);
      },
    };
    const pending = route.handler(ctx);
    const readBodySync = readBodyCalled;
    await pending;
    if (!sink.answer) throw new Error(`${method} ${path} finished without an answer`);
    const { status, headers, body } = sink.answer;
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    return { status, headers, body, json, readBodySync, header: (name) => headers.find(([n]) => n.toLowerCase() === name)?.[1] };
  };
}

export const jsonBody = (value: unknown): CallOptions => ({ body: JSON.stringify(value), headers: { 'content-type': 'application/json' } });

export interface PortalHarness {
  db: TestDatabase;
  tr: TestRedis;
  counters: Counters;
  routes: PortalRoute[];
  call: Call;
  log: Logger;
  /** Builds another set of routes over the same services with other deps. */
  build(overrides?: Partial<PortalDeps>): { routes: PortalRoute[]; call: Call };
  close(): Promise<void>;
}

export async function startPortal(overrides: Partial<PortalDeps> = {}): Promise<PortalHarness> {
  const db = await createTestDatabase();
  const tr = await connectTestRedis();
  // The hot-path client of main.ts: no offline queue.
  const redis = await tr.connect({ enableOfflineQueue: false });
  const counters = createCounters({ redis, intervalMs: 60_000 });
  const log = createLogger({ level: 'silent', name: 'portal-test' });
  const build = (more: Partial<PortalDeps> = {}) => {
    const routes = createPortalRoutes({ sql: db.sql, redis, jwtSecret: JWT_SECRET, log, counters, ...overrides, ...more });
    return { routes, call: caller(routes) };
  };
  const { routes, call } = build();
  return {
    db,
    tr,
    counters,
    routes,
    call,
    log,
    build,
    async close() {
      await tr.close();
      await db.drop();
    },
  };
}

/** Registers and logs in; returns the token, cookie header value and user. */
export async function signUp(call: Call, email: string, password = STRONG_PASSWORD, ip = '127.0.0.1') {
  const reg = await call('POST', '/portal/register', { ...jsonBody({ email, password }), ip });
  if (reg.status !== 201) throw new Error(`register ${email}: ${reg.status} ${reg.body}`);
  const res = await call('POST', '/portal/login', { ...jsonBody({ email, password }), ip });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${res.body}`);
  const token = res.json.token as string;
  return { token, user: res.json.user as { id: string; email: string; tier: string; role: string }, cookie: `fluxgate_session=${token}` };
}

/** Headers for a cookie session's state change (with the CSRF header) or a bearer session. */
export const cookieAuth = (cookie: string, csrf = true): Record<string, string> => ({
  cookie,
  ...(csrf ? { 'x-fluxgate-csrf': '1' } : {}),
});
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });
