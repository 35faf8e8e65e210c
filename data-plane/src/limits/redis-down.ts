import { admitted, refused, type Admission, type DecisionKind } from './admission.js';
import { bucketLimitsOf, LocalBuckets } from './bucket.js';
import type { KeyState } from './key-state.js';
import type { TokenEstimate } from './reservation.js';

/**
 * What the rate limiter does while Redis is unreachable (LIMITS_REDIS_DOWN_POLICY). Units
 * already leased before the outage are spent first in every policy (they were drawn fairly);
 * after that:
 * - 'local' (default): keep serving under in-process buckets holding the tier ÷
 *   `assumedReplicas` (LIMITS_ASSUMED_REPLICAS). Each replica decides alone, so N replicas admit
 *   at most N / assumedReplicas × the tier — exactly the tier when the setting matches the
 *   replica count, N × the tier with the default 1 (an outage never locks paying clients out).
 *   A key seen shortly before starts from what it had left then, not from a fresh allowance.
 * - 'open': admit everything (inference must not stop; limits resume with Redis).
 * - 'closed': refuse with reason 'unavailable' (the caller answers 503): for deployments where
 *   exceeding a limit costs more than an outage.
 * Local decisions are counted (fluxgate_rate_limit_decisions_total{decision="fallback_*"}) but
 * not replayed into Redis afterwards: charging keys for an outage would refuse them for it.
 */
export type RedisDownPolicy = 'local' | 'open' | 'closed';

export function decideLocally(
  policy: RedisDownPolicy,
  assumedReplicas: number,
  keyId: string,
  st: KeyState,
  est: TokenEstimate,
  now: number,
): { admission: Admission; kind: DecisionKind } {
  if (policy === 'open') return { admission: admitted(keyId, st, est, 'open', now), kind: 'fallback_admit' };
  if (policy === 'closed') return { admission: refused(st, 'unavailable', 1000, now, true), kind: 'fallback_refuse' };
  if (!st.fallback) {
    const p = st.shared ? st.projected(now) : undefined;
    const start = p && { requests: p.requests / assumedReplicas, tokens: p.tokens / assumedReplicas };
    st.fallback = new LocalBuckets(bucketLimitsOf(st.tier, assumedReplicas), now, start);
  }
  const r = st.fallback.take(now, est.promptTokens + est.completionTokens);
  if (!r.ok) return { admission: refused(st, r.reason, r.waitMs, now, true), kind: 'fallback_refuse' };
  return { admission: admitted(keyId, st, est, 'fallback', now), kind: 'fallback_admit' };
}
