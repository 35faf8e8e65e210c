/**
 * Every Redis key and channel name both planes use. Nothing else may build a key string.
 *
 * Per-API-key records carry the key id in a hash tag (`{k:<id>}`) so that every record of one
 * key lands in the same Redis Cluster slot: the rate-limit Lua scripts touch several of them
 * atomically, and Cluster only allows that within one slot.
 */

export const PREFIX = 'fg';

/** Hash tag for everything belonging to one API key. */
export const keyTag = (keyId: string): string => `{k:${keyId}}`;
/**
 * Hash tag for the rate-limit buckets of one account (a user: the sum over its keys) and of each
 * of its keys: the lease script decides a key's and its account's buckets in one atomic call,
 * which Redis Cluster only allows within one slot.
 */
export const accountTag = (accountId: string): string => `{a:${accountId}}`;
/** Hash tag for everything belonging to one client IP. */
export const ipTag = (ip: string): string => `{ip:${ip}}`;
/** Subjects of guard records: a key id, or `ip:<address>` for per-IP detectors. */
export const ipSubject = (ip: string): string => `ip:${ip}`;
const subjectTag = (subject: string): string => (subject.startsWith('ip:') ? ipTag(subject.slice(3)) : keyTag(subject));
/** Hash tag shared by the incident stream, records and summaries. */
export const INCIDENTS_TAG = '{incidents}';

export const redisKeys = {
  /** Usage counters (hash, fields in usage.ts) of one key in one window bucket. */
  usage: (keyId: string, window: string, bucket: number) => `${PREFIX}:use:${keyTag(keyId)}:${window}:${bucket}`,
  /** HyperLogLog of distinct client IPs of one key in one bucket. */
  usageIps: (keyId: string, window: string, bucket: number) => `${PREFIX}:use:${keyTag(keyId)}:${window}:${bucket}:ips`,
  /** HyperLogLog of distinct models asked for by one key in one bucket. */
  usageModels: (keyId: string, window: string, bucket: number) => `${PREFIX}:use:${keyTag(keyId)}:${window}:${bucket}:models`,
  /** Hash: short prompt fingerprint → count, one key, one bucket. */
  usagePrompts: (keyId: string, window: string, bucket: number) => `${PREFIX}:use:${keyTag(keyId)}:${window}:${bucket}:fp`,
  /** Set of key ids that had traffic in a bucket, so readers never SCAN. */
  activeKeys: (window: string, bucket: number) => `${PREFIX}:active:${window}:${bucket}`,
  /** Hash of per-IP counters (failed credentials, failed logins) in one bucket. */
  ipUsage: (ip: string, window: string, bucket: number) => `${PREFIX}:ipuse:${ipTag(ip)}:${window}:${bucket}`,
  /** Set of client IPs with counters in a bucket. */
  activeIps: (window: string, bucket: number) => `${PREFIX}:active-ips:${window}:${bucket}`,
  /** One shard of a window's key counters packed for the guard (hash key id → packed value, packed-windows.ts). */
  packedUsage: (window: string, bucket: number, shard: number) => `${PREFIX}:usepk:${window}:${bucket}:${shard}`,
  /** One shard of a window's client-IP counters packed for the guard (hash ip → packed value). */
  packedIpUsage: (window: string, bucket: number, shard: number) => `${PREFIX}:ipusepk:${window}:${bucket}:${shard}`,

  /**
   * Rate-limit state of one key under one tier (hash: request and token buckets), see tiers.ts.
   * In its account's slot (accountTag), not the key's, so one script call decides both.
   * Per tier, so a penalty drains its own buckets and a pardoned key finds its own tier's
   * buckets as it left them (refilled meanwhile), not emptied by the penalty.
   */
  rateLimit: (accountId: string, keyId: string, tierId: string) => `${PREFIX}:rl:${accountTag(accountId)}:k:${keyId}:${tierId}`,
  /** Rate-limit state of one account (the sum over its keys) under one tier; same hash shape. */
  rateLimitAccount: (accountId: string, tierId: string) => `${PREFIX}:rl:${accountTag(accountId)}:acct:${tierId}`,
  /** Open-stream counter of one key (concurrency cap). */
  concurrency: (keyId: string) => `${PREFIX}:conc:${keyTag(keyId)}`,
  /** Penalty override of one key (JSON, PenaltyRecord), with a TTL equal to its expiry. */
  penalty: (keyId: string) => `${PREFIX}:penalty:${keyTag(keyId)}`,
  /** Sorted set of key ids in the penalty box, scored by expiry (ms). */
  penaltyIndex: () => `${PREFIX}:penalty-index`,
  /**
   * Recent offences of one key, for escalation: ZSET member incident id, score epoch ms. Members
   * older than OFFENCE_MEMORY_SECONDS (guard.ts) no longer count, so good behaviour decays one
   * offence at a time; the key itself expires after the same memory.
   */
  offences: (keyId: string) => `${PREFIX}:offences:${keyTag(keyId)}`,
  /**
   * Marker that one detector already opened an incident for this episode of a key (JSON
   * EpisodeRecord, guard.ts), with TTL EPISODE_QUIET_SECONDS refreshed while the abuse goes on.
   * `subject` is a key id, or `ip:<address>` for per-IP detectors.
   */
  episode: (subject: string, detector: string) => `${PREFIX}:episode:${subjectTag(subject)}:${detector}`,
  /** Grace after a pardon of a guard penalty (JSON GraceRecord, guard.ts), TTL = the grace. */
  pardonGrace: (keyId: string) => `${PREFIX}:grace:${keyTag(keyId)}`,
  /** Episodes whose penalty or block the guard watches for expiry or pardon (ZSET episode key → expiresAt ms). */
  guardWatch: () => `${PREFIX}:guard:watch`,
  /** Detector modes set at run time by an operator (hash detector → 'enforce' | 'shadow'); wins over config. */
  detectorModes: () => `${PREFIX}:guard:modes`,
  /** Request-rate baselines (EWMA) of keys, saved by the leader so a new leader starts warm (hash keyId → JSON). */
  guardBaselines: () => `${PREFIX}:guard:baselines`,

  /** IP block of one client IP (JSON IpBlockRecord, ip-block.ts), PX = time left until expiresAt. */
  ipBlock: (ip: string) => `${PREFIX}:ipblock:${ipTag(ip)}`,
  /** Sorted set of blocked IPs, scored by expiry (ms); a hint like penaltyIndex. */
  ipBlockIndex: () => `${PREFIX}:ipblock-index`,

  /**
   * Sorted set of revoked and suspended API keys, member `<status>:<keyId>` (status `revoked` or
   * `suspended`), score = Redis time of the change in ms. Written before the pub/sub event by
   * every path that revokes or suspends a key; every data-plane replica reads it incrementally,
   * so a lost event is repaired within a poll. Trimmed by age and size on every write.
   */
  revokedKeys: () => `${PREFIX}:revoked-keys`,

  /** Revoked session ids (JWT jti), TTL = remaining token lifetime. */
  revokedSession: (jti: string) => `${PREFIX}:jti:${jti}`,
  /** Login / register throttles. */
  loginThrottleIp: (ip: string) => `${PREFIX}:login:${ipTag(ip)}`,
  loginThrottleAccount: (email: string) => `${PREFIX}:login:acct:${email}`,
  /**
   * Growing login delay of one account (hash: f = failures, next = ms before which attempts are
   * refused). Shares a hash tag with loginKnownIps so one script reads both on Redis Cluster.
   */
  loginDelay: (email: string) => `${PREFIX}:login:{acct:${email}}:delay`,
  /** Sorted set of client IP keys (IPv6: /64) that logged in to this account, scored by expiry ms. */
  loginKnownIps: (email: string) => `${PREFIX}:login:{acct:${email}}:known`,

  /**
   * The incident ring buffer: a stream capped at INCIDENT_CAPACITY (entry fields `id` and `data`,
   * the incident as first stored). The three incident keys share the hash tag `{incidents}`, so
   * the script that adds an incident and trims all three at once runs on Redis Cluster too.
   */
  incidents: () => `${PREFIX}:${INCIDENTS_TAG}`,
  /** Hash incident id → the incident's current JSON (updated through its episode); trimmed with the stream. */
  incidentRecords: () => `${PREFIX}:${INCIDENTS_TAG}:records`,
  /** Hash incident id → summary JSON, written after the incident itself; trimmed with the stream. */
  incidentSummaries: () => `${PREFIX}:${INCIDENTS_TAG}:summaries`,
  /** Control-plane leader lease (SET NX PX; JSON GuardLease, guard.ts). */
  guardLease: () => `${PREFIX}:guard:lease`,
  /** Shadow-mode decisions (would-be actions with their evidence), a stream capped like incidents. */
  shadowDecisions: () => `${PREFIX}:shadow`,

  /** Sorted set of live data-plane replicas (member = JSON ReplicaRecord, score = last heartbeat ms). */
  replicas: () => `${PREFIX}:replicas`,
  /** Latest metrics of each data-plane replica (hash replicaId → JSON ReplicaMetricsRecord, health.ts). */
  replicaMetrics: () => `${PREFIX}:replica-metrics`,
  /** Upstream health as seen by each replica (hash replicaId → JSON UpstreamHealthReport, health.ts). */
  upstreamHealth: () => `${PREFIX}:upstream-health`,
} as const;

/**
 * redisKeys.revokedKeys keeps entries this long (longer than any key cache TTL plus its stale
 * window, after which every replica re-reads the key from Postgres anyway) and at most this many.
 */
export const REVOKED_KEYS_RETENTION_MS = 60 * 60_000;
export const REVOKED_KEYS_MAX = 10_000;

/** Pub/sub channels. Messages are JSON, schemas in events.ts. */
export const channels = {
  /** API key revoked, suspended, re-activated or re-tiered: drop it from every key cache. */
  keys: `${PREFIX}:ch:keys`,
  /** A penalty was set, changed or lifted. */
  penalties: `${PREFIX}:ch:penalties`,
  /** A tier's limits changed (TiersEvent). */
  tiers: `${PREFIX}:ch:tiers`,
  /** An IP block was set or lifted (IpBlockEvent). */
  ipBlocks: `${PREFIX}:ch:ipblocks`,
  /** A detector's mode changed at run time (DetectorModeEvent); the guard also re-reads every poll. */
  detectorModes: `${PREFIX}:ch:detector-modes`,
} as const;
