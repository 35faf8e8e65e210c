/**
 * Readiness checks that say why (issue 16), shared by both planes' /readyz: each check is `ok`
 * or `failing` with a short reason. The reason names the kind of failure, from the error's code,
 * never the text of a driver's error (which may carry host names, addresses or a user name):
 * /readyz answers without authentication.
 */

export interface CheckResult {
  status: 'ok' | 'failing';
  /** Why it fails (or a short note such as "2 of 2 available"): no address, name or secret. */
  reason?: string;
}

/** Resolves when the dependency is usable; rejects (or resolves false) when it is not. */
export type ReadinessCheck = () => Promise<unknown>;

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

export function failureReason(err: unknown): string {
  if (err instanceof ReadinessFailure) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return REASONS[code] ?? (/^[A-Z0-9_]{2,32}$/.test(code) ? `error ${code}` : 'error');
  return 'error';
}

/** Runs one check with a deadline: `ok`, or `failing` and why. */
export async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ReadinessFailure(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const ok = await Promise.race([check(), timeout]);
    return ok === false ? { status: 'failing', reason: 'unexpected answer' } : { status: 'ok' };
  } catch (err) {
    return { status: 'failing', reason: failureReason(err) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Memoises an evaluation for `cacheMs` and shares one in flight, so a load balancer probing
 * every replica often cannot turn readiness into a stampede on Redis and Postgres.
 */
export function cachedEvaluation<T>(evaluate: () => Promise<T>, cacheMs: number): () => Promise<T> {
  let cached: { at: number; value: T } | null = null;
  let inflight: Promise<T> | null = null;
  return async () => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.value;
    inflight ??= evaluate().finally(() => (inflight = null));
    const value = await inflight;
    cached = { at: Date.now(), value };
    return value;
  };
}

/** The /readyz body and status for a set of named results. */
export function readinessAnswer(checks: Record<string, CheckResult>): { status: 200 | 503; body: Record<string, unknown> } {
  const failing = Object.entries(checks)
    .filter(([, r]) => r.status !== 'ok')
    .map(([name]) => name);
  const ready = failing.length === 0;
  return { status: ready ? 200 : 503, body: { status: ready ? 'ready' : 'not_ready', ...(ready ? {} : { failing }), checks } };
}
