import {
  connectionEnvShape,
  DEFAULT_INCIDENT_CAPACITY,
  DEFAULT_IP_BLOCK_SECONDS,
  DEFAULT_MAX_OPERATOR_PENALTY_SECONDS,
  DEFAULT_PARDON_GRACE_SECONDS,
  DETECTORS,
  DETECTOR_MODES,
  EPISODE_QUIET_SECONDS,
  OFFENCE_MEMORY_SECONDS,
  PENALTY_DURATION_SECONDS,
  PENALTY_LEVELS,
  type DetectorId,
  type DetectorMode,
  type PenaltyLevel,
} from '@fluxgate/contracts';
import { z } from 'zod';
import { hostListSchema, MCP_ROLES, MCP_TOKEN_NAME_RE, mcpTokenSchema, mcpTokensSchema, originListSchema } from './mcp-env.js';

/**
 * Every variable the control plane reads, parsed once at boot (main.ts); nothing else reads
 * process.env. Names from the earlier design (POLL_INTERVAL in seconds, OLLAMA_URL/OLLAMA_HOST,
 * LLM_MODEL, REDIS_URL, DATABASE_URL) keep their meaning.
 */

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
const positive = (def: number) => z.coerce.number().positive().finite().default(def);
const count = (def: number) => z.coerce.number().int().positive().default(def);
const seconds = (def: number) => z.coerce.number().int().positive().default(def);

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** `a=1,b=2` → Map; names checked against `names` (null: any tier-like id), values by `value`. */
function assignments<N extends string, V>(names: readonly N[] | null, value: z.ZodType<V>, what: string, def = '') {
  return z
    .string()
    .default(def)
    .transform((text, ctx) => {
      const out = new Map<N, V>();
      for (const part of text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)) {
        const [name, raw] = part.split('=').map((s) => s.trim());
        const known = name !== undefined && (names ? (names as readonly string[]).includes(name) : NAME_RE.test(name));
        if (!name || raw === undefined || !known) {
          const expected = names ? `names from ${names.join(', ')}` : 'lower-case ids';
          ctx.addIssue({ code: 'custom', message: `expected ${what} as name=value pairs with ${expected}; got "${part}"` });
          return z.NEVER;
        }
        const v = value.safeParse(raw);
        if (!v.success) {
          ctx.addIssue({ code: 'custom', message: `bad value for ${name}: ${v.error.issues[0]?.message ?? 'invalid'}` });
          return z.NEVER;
        }
        out.set(name as N, v.data);
      }
      return out;
    });
}

export const controlPlaneEnvSchema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where the data plane keeps generated state; the admin token is read from here when ADMIN_TOKEN is unset. */
  FLUXGATE_STATE_DIR: z.string().min(1).default('.fluxgate'),
  REDIS_URL: optionalString.pipe(url(['redis:', 'rediss:']).optional()),
  DATABASE_URL: optionalString.pipe(url(['postgres:', 'postgresql:']).optional()),
  /** PGHOST…PGDATABASE, PGPASSWORD/DATABASE_PASSWORD_FILE, REDIS_PASSWORD/REDIS_PASSWORD_FILE: the URLs from parts. */
  ...connectionEnvShape,

  CONTROL_PLANE_HOST: z.string().min(1).default('127.0.0.1'),
  CONTROL_PLANE_PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  /** Bearer token for /metrics (the data plane's admin token). */
  ADMIN_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),

  /** Guard loop interval in seconds (decimals allowed, e.g. 0.5). */
  POLL_INTERVAL: z.coerce.number().min(0.2).max(60).default(2),
  INCIDENT_CAPACITY: z.coerce.number().int().min(10).max(10_000_000).default(DEFAULT_INCIDENT_CAPACITY),

  OLLAMA_HOST: optionalString.pipe(url(['http:', 'https:']).optional()),
  /** Earlier design's name for OLLAMA_HOST (OLLAMA_HOST wins when both are set). */
  OLLAMA_URL: optionalString.pipe(url(['http:', 'https:']).optional()),
  LLM_MODEL: z.string().trim().min(1).default('llama3.2:1b'),
  /** One summary request to Ollama, whole answer. */
  LLM_TIMEOUT_MS: count(20_000),
  /** Summaries in flight at once. */
  LLM_CONCURRENCY: z.coerce.number().int().min(1).max(32).default(2),
  /** While Ollama is down, how often to try again (template summaries meanwhile are upgraded once it answers). */
  LLM_RETRY_MS: count(30_000),
  /** Template-summarised incidents kept for an upgrade once Ollama answers again. */
  LLM_RETRY_QUEUE: z.coerce.number().int().min(0).max(100_000).default(1000),

  /** Default mode of every detector; GUARD_MODES overrides per detector; operators override at run time. */
  GUARD_DEFAULT_MODE: z.enum(DETECTOR_MODES).default('enforce'),
  GUARD_MODES: assignments<DetectorId, DetectorMode>(DETECTORS, z.enum(DETECTOR_MODES), 'detector modes'),
  /** Counter history each detector looks at (seconds, a multiple of the 10 s window). */
  GUARD_LOOKBACK_SECONDS: z.coerce.number().int().min(10).max(600).multipleOf(10).default(30),
  /** Count thresholds (distinct IPs, models, prompts, failures) are multiplied by the key's tier's factor. */
  GUARD_TIER_SCALE: assignments<string, number>(null, z.coerce.number().positive(), 'tier scale factors', 'free=1,pro=2,enterprise=4'),

  GUARD_FLOOD_AVG_PROMPT_TOKENS: count(8000),
  // Below GUARD_OVERUSE_TIER_FACTOR on purpose: a flood of huge prompts must be named a flood
  // (it trips first) rather than the token over-consumption it also is.
  GUARD_FLOOD_TIER_FACTOR: positive(1.1),
  GUARD_FLOOD_MIN_REQUESTS: count(3),
  GUARD_OVERUSE_TIER_FACTOR: positive(1.5),
  GUARD_STUFFING_FAILURES: count(20),
  GUARD_SPIKE_FACTOR: positive(8),
  GUARD_SPIKE_TIER_FACTOR: positive(1),
  GUARD_SPIKE_WARMUP_BUCKETS: count(18),
  GUARD_HAMMER_TIER_FACTOR: positive(1),
  GUARD_HAMMER_MIN: count(20),
  GUARD_HAMMER_RATIO: z.coerce.number().gt(0).max(1).default(0.5),
  GUARD_RATIO_MAX: positive(20),
  GUARD_RATIO_TIER_FACTOR: positive(0.25),
  GUARD_REPEAT_MIN: count(20),
  GUARD_REPEAT_SHARE: z.coerce.number().gt(0).max(1).default(0.5),
  GUARD_REPEAT_TIER_FACTOR: positive(0.5),
  GUARD_ENUM_MODELS: count(8),
  GUARD_LEAK_IPS: count(10),

  /** Highest penalty level the guard itself may set (escalation ceiling, 1..3). */
  GUARD_MAX_LEVEL: z.coerce.number().int().min(1).max(3).default(3),
  /** Penalty durations per level, seconds. */
  GUARD_PENALTY_SECONDS: assignments<PenaltyLevel, number>(
    PENALTY_LEVELS,
    z.coerce.number().int().positive(),
    'penalty durations',
  ).transform(
    (m) => Object.fromEntries(PENALTY_LEVELS.map((l) => [l, m.get(l) ?? PENALTY_DURATION_SECONDS[l]])) as Record<PenaltyLevel, number>,
  ),
  GUARD_IP_BLOCK_SECONDS: seconds(DEFAULT_IP_BLOCK_SECONDS),
  GUARD_PARDON_GRACE_SECONDS: seconds(DEFAULT_PARDON_GRACE_SECONDS),
  GUARD_EPISODE_QUIET_SECONDS: seconds(EPISODE_QUIET_SECONDS),
  GUARD_OFFENCE_MEMORY_SECONDS: seconds(OFFENCE_MEMORY_SECONDS),
  /** Never penalised (shadow incidents instead): `key:<id>`, `account:<user id or email>`, `cidr:<ip or cidr>`, comma-separated. */
  GUARD_ALLOWLIST: z.string().default(''),

  /** MCP over HTTP (README "MCP"): one operator token, acting as `mcp-token`. */
  MCP_TOKEN: mcpTokenSchema,
  /** Named MCP tokens: `name:token` (operator) or `name:reader:token` / `name:operator:token`, comma-separated. */
  MCP_TOKENS: mcpTokensSchema,
  /** The role of `npm run mcp:stdio` (no token: whoever can start it). */
  MCP_STDIO_ROLE: z.enum(MCP_ROLES).default('reader'),
  /** The name stdio actions are recorded under. */
  MCP_STDIO_NAME: z.string().trim().regex(MCP_TOKEN_NAME_RE, 'expected 1-64 letters, digits or _ . @ -').default('stdio'),
  /** Longest penalty an MCP operator may set without force: true (seconds; 24 h). */
  MCP_MAX_PENALTY: seconds(DEFAULT_MAX_OPERATOR_PENALTY_SECONDS),
  /** Host names /mcp answers besides localhost, 127.0.0.1 and [::1] (DNS-rebinding protection). */
  MCP_ALLOWED_HOSTS: hostListSchema,
  /** Browser origins /mcp accepts besides loopback ones (requests without Origin are not browsers). */
  MCP_ALLOWED_ORIGINS: originListSchema,
});

export type ControlPlaneConfig = z.infer<typeof controlPlaneEnvSchema>;
