import { connectionEnvShape, DEFAULT_INCIDENT_CAPACITY, DEFAULT_PARDON_GRACE_SECONDS, operatorPenaltyCapSchema } from '@fluxgate/contracts';
import { strongSecret } from './secret-strength.js';
import { z } from 'zod';
import { isCidr } from '../net/cidr-set.js';

/**
 * Every variable the data plane reads, parsed once at boot. Nothing else reads process.env.
 * Names from the earlier design (DATABASE_URL, REDIS_URL, JWT_SECRET, DOWNSTREAM_AI_URLS,
 * TLS_CERT_PATH, TLS_KEY_PATH, PUBLIC_PORT, ADMIN_PORT, CLUSTER_DOMAIN) keep their meaning.
 */

const port = z.coerce.number().int().min(0).max(65535);
const ms = (def: number) => z.coerce.number().int().positive().default(def);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const url = (protocols: readonly string[]) =>
  z
    .string()
    .trim()
    .refine(
      (v) => {
        try {
          return protocols.includes(new URL(v).protocol);
        } catch {
          return false;
        }
      },
      `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
    );

/** Comma-separated list; empty entries dropped. */
const list = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );

export const dataPlaneEnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where generated state lives (self-signed certificate, embedded services, admin token). */
  FLUXGATE_STATE_DIR: z.string().min(1).default('.fluxgate'),

  PUBLIC_HOST: z.string().min(1).default('0.0.0.0'),
  PUBLIC_PORT: port.default(8443),
  ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
  ADMIN_PORT: port.default(9090),
  /**
   * Admin listener over TLS (true: the public listener's certificate unless ADMIN_TLS_CERT_PATH/
   * ADMIN_TLS_KEY_PATH name a pair of its own, which alone also turn TLS on). Required for a
   * non-loopback ADMIN_HOST (config/admin-listener.ts).
   */
  ADMIN_TLS: z.stringbool().optional(),
  ADMIN_TLS_CERT_PATH: optionalString,
  ADMIN_TLS_KEY_PATH: optionalString,
  /** Bearer token for the admin listener; generated under the state dir when unset. */
  ADMIN_TOKEN: optionalString.pipe(strongSecret(16, 'must be at least 16 characters').optional()),

  TLS_CERT_PATH: optionalString,
  TLS_KEY_PATH: optionalString,

  DATABASE_URL: optionalString.pipe(url(['postgres:', 'postgresql:']).optional()),
  REDIS_URL: optionalString.pipe(url(['redis:', 'rediss:']).optional()),
  /** PGHOST…PGDATABASE, PGPASSWORD/DATABASE_PASSWORD_FILE, REDIS_PASSWORD/REDIS_PASSWORD_FILE: the URLs from parts. */
  ...connectionEnvShape,
  /** Path of init.sql, applied at boot. */
  INIT_SQL_PATH: optionalString,
  /** Directory of the built SPA served on the public listener (default: the repository's frontend/dist). */
  SPA_DIR: optionalString,

  DOWNSTREAM_AI_URLS: z.string().trim().min(1).default('http://127.0.0.1:11434'),
  UPSTREAMS_FILE: optionalString,
  UPSTREAM_CONNECT_TIMEOUT_MS: ms(5_000),
  UPSTREAM_HEADERS_TIMEOUT_MS: ms(120_000),
  UPSTREAM_IDLE_TIMEOUT_MS: ms(60_000),
  UPSTREAM_TOTAL_TIMEOUT_MS: ms(600_000),
  UPSTREAM_MAX_RETRIES: z.coerce.number().int().min(0).max(5).default(2),
  UPSTREAM_PROBE_PATH: z.string().startsWith('/').default('/'),
  UPSTREAM_PROBE_INTERVAL_MS: ms(10_000),

  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  MAX_CONCURRENT_REQUESTS: z.coerce.number().int().positive().default(10_000),
  /** Open requests per API key when its tier does not say otherwise. */
  PER_KEY_CONCURRENCY: z.coerce.number().int().positive().default(64),
  /** Per-key request and token limits from the key's tier, and the penalty box (false: neither). */
  LIMITS_ENABLED: z.stringbool().default(true),
  /** While Redis is unreachable: local (per-replica buckets), open (admit all) or closed (503). */
  LIMITS_REDIS_DOWN_POLICY: z.enum(['local', 'open', 'closed']).default('local'),
  /** The local fallback gives each replica the tier ÷ this (set it to the replica count). */
  LIMITS_ASSUMED_REPLICAS: z.coerce.number().int().min(1).max(1000).default(1),
  /** Completion tokens reserved for a request that sends no max_tokens. */
  LIMITS_DEFAULT_MAX_TOKENS: z.coerce.number().int().min(1).default(1024),
  /** Largest local lease, as a fraction of a bucket's capacity (0: every decision goes to Redis). */
  LIMITS_LEASE_FRACTION: z.coerce.number().min(0).max(0.5).default(0.1),
  /** An unspent lease goes back to Redis after this long. */
  LIMITS_LEASE_TTL_MS: ms(2_000),
  /** A rate-limit call to Redis slower than this counts as Redis down. */
  LIMITS_REDIS_TIMEOUT_MS: ms(500),
  /** Full re-read of the penalty box, repairing any lost pub/sub message. */
  PENALTY_RESYNC_MS: ms(5_000),
  /** Full re-read of the IP blocks the control plane set, repairing any lost pub/sub message. */
  IP_BLOCK_RESYNC_MS: ms(5_000),
  /** Reload of the tiers table (also on every channels.tiers message). */
  TIERS_REFRESH_MS: ms(60_000),
  /** SSE comment heartbeat while waiting for the first token (uWS drops idle connections at 10 s). */
  SSE_HEARTBEAT_MS: ms(5_000),

  COUNTER_FLUSH_MS: ms(1_000),
  COUNTER_MAX_PENDING_BUCKETS: z.coerce.number().int().positive().default(100_000),
  KEY_CACHE_TTL_MS: ms(60_000),
  /** How long past KEY_CACHE_TTL_MS a key may be served while Postgres cannot answer (then 503). */
  KEY_CACHE_STALE_MAX_MS: z.coerce.number().int().min(0).default(5_000),
  /** How often each replica reads new revocations from Redis (repairs a lost pub/sub message). */
  KEY_REVOCATION_POLL_MS: z.coerce.number().int().min(100).max(60_000).default(1_000),
  KEY_NEGATIVE_TTL_MS: ms(30_000),
  KEY_CACHE_SIZE: z.coerce.number().int().positive().default(100_000),
  /** Postgres lookups of never-seen keys per client IP (IPv6: per /64): sustained rate and burst, 429 beyond. */
  KEY_LOOKUPS_PER_IP_PER_SECOND: z.coerce.number().positive().default(5),
  KEY_LOOKUPS_PER_IP_BURST: z.coerce.number().int().positive().default(20),

  /** Session signing secret (≥ 32 bytes). Unset outside production: generated under the state dir. */
  JWT_SECRET: optionalString.pipe(strongSecret(32, 'must be at least 32 bytes').optional()),
  SESSION_TTL_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),
  /** Per account: attempts without delay; each further one waits 2^k s (k = failures past these), up to the cap. */
  LOGIN_FREE_FAILURES: z.coerce.number().int().positive().default(5),
  LOGIN_MAX_DELAY_SECONDS: z.coerce.number().int().positive().default(900),
  /** A client (IPv6: /64) that logged in to an account skips that account's delay for this long. */
  LOGIN_KNOWN_IP_TTL_DAYS: z.coerce.number().int().positive().max(365).default(30),
  LOGIN_MAX_ATTEMPTS_PER_IP: z.coerce.number().int().positive().default(30),
  LOGIN_THROTTLE_WINDOW_SECONDS: z.coerce.number().int().positive().default(900),
  PORTAL_MAX_KEYS_PER_USER: z.coerce.number().int().positive().default(50),
  /** Reverse proxies whose X-Forwarded-For is trusted for the client address (comma-separated IPs or CIDRs). */
  TRUSTED_PROXIES: list.superRefine((entries, ctx) => {
    const bad = entries.findIndex((e) => !isCidr(e));
    if (bad >= 0)
      ctx.addIssue({
        code: 'custom',
        message: `entry ${bad + 1} is not an IP address or CIDR (expected e.g. 10.0.0.2,172.16.0.0/12,fd00::/8)`,
      });
  }),
  /** Forward Ollama model management (delete, pull, push, create, copy, blobs) for operator keys. */
  PROXY_MODEL_MANAGEMENT: z.stringbool().default(false),
  CLUSTER_DOMAIN: z.string().trim().default('fluxgate.internal'),
  /** DoH servers for upstream names, in order; IP-literal https URLs need no bootstrap lookup. */
  DOH_UPSTREAMS: z.string().default('https://1.1.1.1/dns-query,https://9.9.9.9/dns-query'),
  DOH_TIMEOUT_MS: ms(1_500),
  /** Hosts-style overrides: `ip name [name…]`, entries separated by newlines or ';'. */
  DNS_OVERRIDES: z.string().default(''),
  DNS_HOSTS_FILE: optionalString,
  /** Let names resolve to private/loopback ranges (never to cloud metadata). */
  DNS_ALLOW_PRIVATE: z.stringbool().default(false),
  DNS_ALLOW_CIDRS: list,
  /** Names left to the system resolver (e.g. compose service names such as `ollama`). */
  DNS_SYSTEM_NAMES: list,
  DNS_FAMILY: z.enum(['ipv4first', 'ipv6first', 'ipv4only', 'ipv6only']).default('ipv4first'),
  DNS_RATE_LIMIT_RPS: z.coerce.number().positive().default(20),
  DNS_RATE_LIMIT_BURST: z.coerce.number().int().positive().default(40),
  /** This replica's address in CLUSTER_DOMAIN answers (default: the bind address or first external IPv4). */
  REPLICA_ADDRESS: optionalString,
  REPLICA_HEARTBEAT_MS: z.coerce.number().int().min(500).max(7_500).default(5_000),
  /** Operator penalties (admin routes, CLI) longer than this need force, in seconds (24 h). The same variable as MCP's. */
  MCP_MAX_PENALTY: operatorPenaltyCapSchema,
  /** Grace an operator's pardon of a guard penalty gives the key on the guard's list (shared with the control plane). */
  GUARD_PARDON_GRACE_SECONDS: z.coerce.number().int().min(1).default(DEFAULT_PARDON_GRACE_SECONDS),
  /** The incident ring buffer's size, kept when an operator incident is added (shared with the control plane). */
  INCIDENT_CAPACITY: z.coerce.number().int().min(10).max(10_000_000).default(DEFAULT_INCIDENT_CAPACITY),
  /** How long a graceful shutdown waits for open streams. */
  DRAIN_TIMEOUT_MS: ms(10_000),
});

export type DataPlaneConfig = z.infer<typeof dataPlaneEnvSchema>;
