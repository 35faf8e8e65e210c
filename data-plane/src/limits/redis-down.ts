import { admitted, refused, type Admission, type DecisionKind } from './admission.js';
import { bucketLimitsOf, LocalBuckets, type Units } from './bucket.js';
import type { AccountState } from './account-state.js';
import type { KeyState } from './key-state.js';
import type { TokenEstimate } from './reservation.js';

/**
 * What the rate limiter does while Redis is unreachable (LIMITS_REDIS_DOWN_POLICY). Units
 * already leased before the outage are spent first in every policy (they were drawn fairly);
 * after that:
 * - 'local' (default): keep serving under in-process buckets holding the tier ÷
 *   `assumedReplicas` (LIMITS_ASSUMED_REPLICAS), one pair per key and one per account (the sum
 *   over its keys in this replica); a request needs room in both. Each replica decides alone, so
 *   N replicas admit at most N / assumedReplicas × the tier — exactly the tier when the setting
 *   matches the replica count, N × the tier with the default 1 (an outage never locks paying
 *   clients out). A key or account seen shortly before starts from what it had left then, not
 *   from a fresh allowance.
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
  if (policy === 'closed') return { admission: refused(st, 'unavailable', 'key', 1000, now, true), kind: 'fallback_refuse' };
  // A key or account seen shortly before starts from what it had left then (its share of it).
  const startOf = (o: KeyState | AccountState): Units | undefined => {
    if (!o.shared) return undefined;
    const p = o.projected(now);
    return { requests: p.requests / assumedReplicas, tokens: p.tokens / assumedReplicas };
  };
  const acct = st.account;
  st.fallback ??= new LocalBuckets(bucketLimitsOf(st.tier, assumedReplicas), now, startOf(st));
  acct.fallback ??= new LocalBuckets(bucketLimitsOf(acct.tier, assumedReplicas), now, startOf(acct));
  const need = est.promptTokens + est.completionTokens;
  const shortKey = st.fallback.shortfall(now, need);
  const shortAccount = acct.fallback.shortfall(now, need);
  if (shortKey || shortAccount) {
    // Told about whichever limit keeps it waiting longer.
    const [short, scope] =
      shortAccount && (!shortKey || shortAccount.waitMs > shortKey.waitMs)
        ? [shortAccount, 'account' as const]
        : [shortKey!, 'key' as const];
    return { admission: refused(st, short.reason, scope, short.waitMs, now, true), kind: 'fallback_refuse' };
  }
  st.fallback.take(now, need);
  acct.fallback.take(now, need);
  return { admission: admitted(keyId, st, est, 'fallback', now), kind: 'fallback_admit' };
}
