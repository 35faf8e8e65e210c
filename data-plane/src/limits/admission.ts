import { rateLimitHeaders, retryAfterSeconds, type HeaderPair } from './headers.js';
import type { KeyState, LimitScope } from './key-state.js';
import { Reservation, type AdmissionSource, type TokenEstimate } from './reservation.js';

/** The rate limiter's answer for one request (see rate-limiter.ts). */
export type RefusalReason = 'requests' | 'tokens' | 'too_large' | 'unavailable';

export type Admission =
  | { ok: true; reservation: Reservation; headers: HeaderPair[] }
  /** `scope`: whether the API key's own limit or its account's (the sum over its keys) was hit. */
  | { ok: false; reason: RefusalReason; scope: LimitScope; retryAfterSeconds: number; headers: HeaderPair[] };

/** How each decision was made, for metrics (fluxgate_rate_limit_decisions_total). */
export const DECISION_KINDS = [
  'lease_admit',
  'redis_admit',
  'redis_refuse',
  'cached_refuse',
  'too_large',
  'fallback_admit',
  'fallback_refuse',
] as const;
export type DecisionKind = (typeof DECISION_KINDS)[number];

export function admitted(keyId: string, st: KeyState, est: TokenEstimate, source: AdmissionSource, now: number): Admission {
  st.open++;
  const v = st.views(now, source === 'fallback');
  return {
    ok: true,
    reservation: new Reservation(keyId, st.limits, st.account.limits, est.promptTokens, est.completionTokens, source),
    headers: rateLimitHeaders(v.requests, v.tokens),
  };
}

export function refused(
  st: KeyState,
  reason: RefusalReason,
  scope: LimitScope,
  waitMs: number,
  now: number,
  useFallback: boolean,
): Admission {
  const v = st.views(now, useFallback);
  // A reservation that can never fit is told to come back after a whole window: only a tier change helps.
  const retry = retryAfterSeconds(Number.isFinite(waitMs) ? waitMs : st.tier.windowSeconds * 1000);
  return {
    ok: false,
    reason,
    scope,
    retryAfterSeconds: retry,
    headers: [['retry-after', String(retry)], ...rateLimitHeaders(v.requests, v.tokens)],
  };
}
