import type { RouteHandler } from './context.js';
import { sendJson } from './respond.js';

/**
 * One readiness check: resolves when the dependency is usable; rejects (or resolves false) when
 * it is not. A rejection's reason is made short and safe by `failureReason`.
 */
export type ReadinessCheck = () => Promise<unknown>;

export interface ReadinessChecks {
  redis: ReadinessCheck;
  postgres: ReadinessCheck;
  /** How many upstreams can take a request now, of how many. */
  upstreams(): { available: number; total: number };
  /** Informational fields shown beside the checks (e.g. how rate limits are being decided). */
  details?(): Record<string, string>;
}

export interface CheckResult {
  status: 'ok' | 'failing';
  /** Why it fails (or, for upstreams, how many answer): short, with no address, name or secret. */
  reason?: string;
}

/** A failure the check itself describes (e.g. "not connected (reconnecting)"): shown as is. */
export class ReadinessFailure extends Error {
  override name = 'ReadinessFailure';
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection lost',
  CONNECTION_CLOSED: 'connection lost',
  CONNECTION_ENDED: 'connection lost',
  CONNECTION_DESTROYED: 'connection lost',
  ETIMEDOUT: 'connect timed out',
  CONNECT_TIMEOUT: 'connect timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name does not resolve',
  EAI_AGAIN: 'host name lookup failed',
  '28P01': 'authentication failed',
  '28000': 'authentication failed',
  '3D000': 'database does not exist',
  '53300': 'too many connections',
  '57P01': 'server shutting down',
  '57P03': 'server starting up',
};

/**
 * /readyz is public: a reason names the kind of failure, never the text of a driver's error
 * (which may carry host names, addresses or a user name).
 */
export function failureReason(err: unknown): string {
  if (err instanceof ReadinessFailure) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return REASONS[code] ?? (/^[A-Z0-9_]{2,32}$/.test(code) ? `error ${code}` : 'error');
  return 'error';
}

/** Liveness: the process answers. Never touches a dependency. */
export const healthz: RouteHandler = ({ sink }) => sendJson(sink, 200, { status: 'ok' }, [['cache-control', 'no-store']]);

/**
 * Readiness: 200 only when Redis, Postgres and at least one upstream are usable; the body names
 * each check, `ok` or `failing`, with a short reason, so an operator (or `kubectl describe`)
 * sees why a replica is out. Results are cached for `cacheMs` so a load balancer probing every
 * replica cannot turn into a stampede.
 */
export function readyz(checks: ReadinessChecks, opts: { timeoutMs: number; cacheMs: number }): RouteHandler {
  type Body = Record<'redis' | 'postgres' | 'upstreams', CheckResult>;
  let cached: { at: number; body: Body } | null = null;
  let inflight: Promise<Body> | null = null;
  const run = async (check: ReadinessCheck): Promise<CheckResult> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ReadinessFailure(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      timer.unref();
    });
    try {
      const ok = await Promise.race([check(), timeout]);
      return ok === false ? { status: 'failing', reason: 'unexpected answer' } : { status: 'ok' };
    } catch (err) {
      return { status: 'failing', reason: failureReason(err) };
    } finally {
      clearTimeout(timer);
    }
  };
  const evaluate = async (): Promise<Body> => {
    const [redis, postgres] = await Promise.all([run(checks.redis), run(checks.postgres)]);
    const { available, total } = checks.upstreams();
    const upstreams: CheckResult =
      available > 0
        ? { status: 'ok', reason: `${available} of ${total} available` }
        : { status: 'failing', reason: total === 0 ? 'none configured' : `none of ${total} available (failing probes or circuit open)` };
    return { redis, postgres, upstreams };
  };
  return async ({ sink }) => {
    const now = Date.now();
    let body = cached && now - cached.at < opts.cacheMs ? cached.body : null;
    if (!body) {
      inflight ??= evaluate().finally(() => (inflight = null));
      body = await inflight;
      cached = { at: Date.now(), body };
    }
    const failing = Object.entries(body)
      .filter(([, r]) => r.status !== 'ok')
      .map(([name]) => name);
    const ready = failing.length === 0;
    sendJson(
      sink,
      ready ? 200 : 503,
      { status: ready ? 'ready' : 'not_ready', ...(ready ? {} : { failing }), checks: body, ...checks.details?.() },
      [['cache-control', 'no-store']],
    );
  };
}
