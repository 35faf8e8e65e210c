import type { RouteHandler } from './context.js';
import { sendJson } from './respond.js';

export interface ReadinessChecks {
  redis(): Promise<boolean>;
  postgres(): Promise<boolean>;
  upstreams(): boolean;
  /** Informational fields shown beside the checks (e.g. how rate limits are being decided). */
  details?(): Record<string, string>;
}

/** Liveness: the process answers. Never touches a dependency. */
export const healthz: RouteHandler = ({ sink }) => sendJson(sink, 200, { status: 'ok' }, [['cache-control', 'no-store']]);

/**
 * Readiness: 200 only when Redis, Postgres and at least one upstream are usable. Results are
 * cached for `cacheMs` so a load balancer probing every replica cannot turn into a stampede.
 */
export function readyz(checks: ReadinessChecks, opts: { timeoutMs: number; cacheMs: number }): RouteHandler {
  let cached: { at: number; body: Record<string, boolean> } | null = null;
  let inflight: Promise<Record<string, boolean>> | null = null;
  const withTimeout = (p: Promise<boolean>) =>
    Promise.race([p.catch(() => false), new Promise<boolean>((r) => setTimeout(r, opts.timeoutMs, false).unref())]);
  const evaluate = async () => {
    const [redis, postgres] = await Promise.all([withTimeout(checks.redis()), withTimeout(checks.postgres())]);
    return { redis, postgres, upstreams: checks.upstreams() };
  };
  return async ({ sink }) => {
    const now = Date.now();
    let body = cached && now - cached.at < opts.cacheMs ? cached.body : null;
    if (!body) {
      inflight ??= evaluate().finally(() => (inflight = null));
      body = await inflight;
      cached = { at: Date.now(), body };
    }
    const ready = body.redis === true && body.postgres === true && body.upstreams === true;
    sendJson(sink, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', checks: body, ...checks.details?.() }, [
      ['cache-control', 'no-store'],
    ]);
  };
}
