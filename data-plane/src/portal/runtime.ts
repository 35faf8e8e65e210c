import { DEFAULT_INCIDENT_CAPACITY, DEFAULT_MAX_OPERATOR_PENALTY_SECONDS, DEFAULT_PARDON_GRACE_SECONDS } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { KeyEventInput } from '../auth/key-events.js';
import { createPasswordHasher, type PasswordHasher } from '../auth/password.js';
import {
  DEFAULT_AUDIENCE,
  DEFAULT_ISSUER,
  DEFAULT_SESSION_TTL_SECONDS,
  createSessionRevocations,
  createSessionTokens,
  type SessionRevocations,
  type SessionTokens,
} from '../auth/session.js';
import { DEFAULT_THROTTLE, createLoginThrottle, type LoginThrottle } from '../auth/throttle.js';
import { announceKeyChange } from '../auth/revocation-feed.js';
import type { RequestSnapshot } from '../http/types.js';
import type { Logger } from '../log/logger.js';
import type { Counters } from '../metrics/counters.js';
import type { OperatorDeps } from '../operator/penalty.js';
import type { Sql } from '../store/db.js';

/** Tunables, from the data plane's config (see createPortalRoutes for the variable names). */
export interface PortalConfig {
  sessionTtlSeconds: number;
  /** Per-client window of login and register attempts (IPv6: per /64). */
  loginMaxPerIp: number;
  loginWindowSeconds: number;
  /** Per-account growing delays (throttle.ts): free attempts, then base × 2^k up to the cap. */
  loginFreeFailures: number;
  loginBaseDelayMs: number;
  loginMaxDelaySeconds: number;
  /** How long a client that logged in stays known-good for the account (skips its delay). */
  loginKnownIpTtlSeconds: number;
  /** Active keys one account may hold (soft limit: two concurrent creates may pass it by one). */
  maxKeysPerUser: number;
  /** Request body limit for portal routes (JSON of a few fields; 413 beyond). */
  bodyLimitBytes: number;
  issuer: string;
  audience: string;
}

export const DEFAULT_PORTAL_CONFIG: PortalConfig = {
  sessionTtlSeconds: DEFAULT_SESSION_TTL_SECONDS,
  loginMaxPerIp: DEFAULT_THROTTLE.maxPerIp,
  loginWindowSeconds: DEFAULT_THROTTLE.windowSeconds,
  loginFreeFailures: DEFAULT_THROTTLE.freeFailures,
  loginBaseDelayMs: DEFAULT_THROTTLE.baseDelayMs,
  loginMaxDelaySeconds: DEFAULT_THROTTLE.maxDelaySeconds,
  loginKnownIpTtlSeconds: DEFAULT_THROTTLE.knownIpTtlSeconds,
  maxKeysPerUser: 50,
  bodyLimitBytes: 16 * 1024,
  issuer: DEFAULT_ISSUER,
  audience: DEFAULT_AUDIENCE,
};

export interface PortalDeps {
  sql: Sql;
  /** The hot-path client (enableOfflineQueue: false), so an outage answers 503 at once. */
  redis: Redis;
  /** JWT_SECRET, at least 32 bytes. */
  jwtSecret: string;
  log: Logger;
  /** Per-IP failed-login counter for the control plane's detectors. */
  counters: Pick<Counters, 'recordFailedLogin'>;
  /** Tells every replica's key cache about a revocation; default: announceKeyChange on `redis` (feed, then pub/sub). */
  announceKeyChange?: (event: KeyEventInput) => Promise<unknown>;
  config?: Partial<PortalConfig>;
  /**
   * The client address used for per-IP throttles and counters. Default: the socket's peer.
   * Behind a reverse proxy (the compose nginx) pass a function that trusts X-Forwarded-For
   * from that proxy only, or every client shares the proxy's budget.
   */
  clientIp?: (req: RequestSnapshot) => string;
  /** Default: Argon2id at OWASP's minimum. */
  passwords?: PasswordHasher;
  /** Operator rails the pardon route shares with the admin routes and the CLI (operator/penalty.ts). */
  operator?: Partial<Pick<OperatorDeps, 'capSeconds' | 'graceSeconds' | 'incidentCapacity'>>;
  /** Clock (ms), for tests. */
  now?: () => number;
}

/** Everything a portal handler uses, built once by createPortalRoutes. */
export interface Portal {
  sql: Sql;
  redis: Redis;
  log: Logger;
  config: PortalConfig;
  tokens: SessionTokens;
  revocations: SessionRevocations;
  throttle: LoginThrottle;
  passwords: PasswordHasher;
  counters: Pick<Counters, 'recordFailedLogin'>;
  announceKeyChange: (event: KeyEventInput) => Promise<unknown>;
  clientIp: (req: RequestSnapshot) => string;
  operator: OperatorDeps;
  now: () => number;
}

export function buildPortal(deps: PortalDeps): Portal {
  const config = { ...DEFAULT_PORTAL_CONFIG, ...deps.config };
  const now = deps.now ?? Date.now;
  return {
    sql: deps.sql,
    redis: deps.redis,
    log: deps.log,
    config,
    tokens: createSessionTokens({
      secret: deps.jwtSecret,
      ttlSeconds: config.sessionTtlSeconds,
      issuer: config.issuer,
      audience: config.audience,
      now,
    }),
    revocations: createSessionRevocations(deps.redis, now),
    throttle: createLoginThrottle(deps.redis, {
      maxPerIp: config.loginMaxPerIp,
      windowSeconds: config.loginWindowSeconds,
      freeFailures: config.loginFreeFailures,
      baseDelayMs: config.loginBaseDelayMs,
      maxDelaySeconds: config.loginMaxDelaySeconds,
      knownIpTtlSeconds: config.loginKnownIpTtlSeconds,
    }),
    passwords: deps.passwords ?? createPasswordHasher(),
    counters: deps.counters,
    announceKeyChange: deps.announceKeyChange ?? ((event) => announceKeyChange(deps.redis, event, deps.log)),
    clientIp: deps.clientIp ?? ((req) => req.remoteAddress),
    operator: {
      sql: deps.sql,
      redis: deps.redis,
      capSeconds: deps.operator?.capSeconds ?? DEFAULT_MAX_OPERATOR_PENALTY_SECONDS,
      graceSeconds: deps.operator?.graceSeconds ?? DEFAULT_PARDON_GRACE_SECONDS,
      incidentCapacity: deps.operator?.incidentCapacity ?? DEFAULT_INCIDENT_CAPACITY,
      now,
      warn: (message) => deps.log.warn(message),
    },
    now,
  };
}
