import { GatewayError } from '../errors.js';

/**
 * Rate-limit response headers in the shape OpenAI sends, so clients and SDKs that already pace
 * themselves on OpenAI's headers (the official SDKs, LangChain, the cookbook's parallel
 * processor) work against Fluxgate unchanged:
 *   x-ratelimit-limit-requests: 60          x-ratelimit-limit-tokens: 100000
 *   x-ratelimit-remaining-requests: 59      x-ratelimit-remaining-tokens: 99000
 *   x-ratelimit-reset-requests: 1s          x-ratelimit-reset-tokens: 6m0s
 * "reset" is the time until that limit is back at its full allowance.
 */
export type HeaderPair = readonly [name: string, value: string];

export interface LimitView {
  /** The tier's advertised number per window. */
  limit: number;
  /** What may still be used right now (never negative). */
  remaining: number;
  /** Milliseconds until the allowance is full again. */
  resetMs: number;
}

/**
 * A duration the way OpenAI writes it, which is Go's `time.Duration.String()` at millisecond
 * resolution: `0s`, `20ms`, `1s`, `1.5s`, `6m0s`, `1h0m0s`. Rounded up to whole milliseconds,
 * so a client that waits exactly this long is never early.
 */
export function formatDuration(ms: number): string {
  const total = Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : 0;
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const sMs = total % 60_000;
  const whole = Math.floor(sMs / 1000);
  const frac = sMs % 1000;
  // Go trims trailing zeros of the fraction: 1.500s → 1.5s.
  const s = frac === 0 ? `${whole}s` : `${whole}.${String(frac).padStart(3, '0').replace(/0+$/, '')}s`;
  if (h > 0) return `${h}h${m}m${s}`;
  if (m > 0) return `${m}m${s}`;
  return s;
}

/**
 * Retry-After is whole seconds (RFC 9110 §10.2.3). Rounded up and at least 1, so a client that
 * honours it never comes back before the allowance is there (0 would invite a hot retry loop).
 */
export function retryAfterSeconds(ms: number): number {
  if (!Number.isFinite(ms)) return 1;
  return Math.max(1, Math.ceil(ms / 1000));
}

const wholeNonNegative = (n: number): string => String(Math.max(0, Math.floor(n)));

/** The six x-ratelimit-* headers, requests first then tokens (OpenAI's order). */
export function rateLimitHeaders(requests: LimitView, tokens: LimitView): HeaderPair[] {
  return [
    ['x-ratelimit-limit-requests', wholeNonNegative(requests.limit)],
    ['x-ratelimit-remaining-requests', wholeNonNegative(requests.remaining)],
    ['x-ratelimit-reset-requests', formatDuration(requests.resetMs)],
    ['x-ratelimit-limit-tokens', wholeNonNegative(tokens.limit)],
    ['x-ratelimit-remaining-tokens', wholeNonNegative(tokens.remaining)],
    ['x-ratelimit-reset-tokens', formatDuration(tokens.resetMs)],
  ];
}

/** What a refused admission carries (see rate-limiter.ts), enough to build the 429. */
export interface RefusalLike {
  retryAfterSeconds: number;
  headers: readonly HeaderPair[];
  reason: string;
  /** Whose limit was hit: the API key's own, or its account's (all its keys together). */
  scope: 'key' | 'account';
}

const REFUSAL_MESSAGES: Record<'key' | 'account', Record<string, string>> = {
  key: {
    requests: 'Rate limit exceeded: too many requests for this API key; retry after the Retry-After delay.',
    tokens: 'Rate limit exceeded: too many tokens for this API key; retry after the Retry-After delay.',
    too_large: "Request too large: its token reservation (prompt + max_tokens) exceeds this API key's token limit; lower max_tokens.",
  },
  account: {
    requests:
      "Rate limit exceeded: too many requests for this API key's account (the limit applies to all its keys together); retry after the Retry-After delay.",
    tokens:
      "Rate limit exceeded: too many tokens for this API key's account (the limit applies to all its keys together); retry after the Retry-After delay.",
    too_large:
      "Request too large: its token reservation (prompt + max_tokens) exceeds the token limit of this API key's account; lower max_tokens.",
  },
};

/**
 * The 429 for a refused admission: `rate_limit_exceeded` with Retry-After plus the x-ratelimit
 * headers, and a message that says whose limit was hit. (`unavailable`, the fail-closed Redis
 * policy, is the caller's 503.) With a penalty in force on the key's own limit the message says
 * so — under penalty-3 every request is "too large" for its 1-token budget, and telling that
 * client to lower max_tokens would be wrong.
 */
export function rateLimitedError(refusal: RefusalLike, penalty?: { level: string; expiresAt: number } | null): GatewayError {
  const message =
    penalty && refusal.scope === 'key'
      ? `Rate limit exceeded: this API key is restricted (${penalty.level}) until ${new Date(penalty.expiresAt).toISOString()}.`
      : REFUSAL_MESSAGES[refusal.scope][refusal.reason];
  return new GatewayError('rate_limit_exceeded', message, { headers: refusal.headers });
}
