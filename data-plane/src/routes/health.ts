import { cachedEvaluation, readinessAnswer, runCheck, type CheckResult, type ReadinessCheck } from '@fluxgate/contracts';
import type { RouteHandler } from './context.js';
import { sendJson } from './respond.js';

export { ReadinessFailure } from '@fluxgate/contracts';

export interface ReadinessChecks {
  redis: ReadinessCheck;
  postgres: ReadinessCheck;
  /** How many upstreams can take a request now, of how many. */
  upstreams(): { available: number; total: number };
  /** Informational fields shown beside the checks (e.g. how rate limits are being decided). */
  details?(): Record<string, string>;
}

/** Liveness: the process answers. Never touches a dependency. */
export const healthz: RouteHandler = ({ sink }) => sendJson(sink, 200, { status: 'ok' }, [['cache-control', 'no-store']]);

/**
 * Readiness: 200 only when Redis, Postgres and at least one upstream are usable; the body names
 * each check, `ok` or `failing`, with a short reason (contracts/readiness.ts), so an operator (or
 * `kubectl describe`) sees why a replica is out. Results are cached for `cacheMs`.
 */
export function readyz(checks: ReadinessChecks, opts: { timeoutMs: number; cacheMs: number }): RouteHandler {
  const evaluate = cachedEvaluation(async (): Promise<Record<'redis' | 'postgres' | 'upstreams', CheckResult>> => {
    const [redis, postgres] = await Promise.all([runCheck(checks.redis, opts.timeoutMs), runCheck(checks.postgres, opts.timeoutMs)]);
    const { available, total } = checks.upstreams();
    const upstreams: CheckResult =
      available > 0
        ? { status: 'ok', reason: `${available} of ${total} available` }
        : { status: 'failing', reason: total === 0 ? 'none configured' : `none of ${total} available (failing probes or circuit open)` };
    return { redis, postgres, upstreams };
  }, opts.cacheMs);
  return async ({ sink }) => {
    const answer = readinessAnswer(await evaluate());
    sendJson(sink, answer.status, { ...answer.body, ...checks.details?.() }, [['cache-control', 'no-store']]);
  };
}
