import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { adminListenerProblem } from '../config/admin-listener.js';
import { ConfigError, connectionUrls } from '../config/load.js';
import { dataPlaneEnvSchema } from '../config/schema.js';

/**
 * What the supervisor (`npm start`) reads, parsed once at its start like each plane's own
 * config. The data plane's whole schema is checked here (same defaults, same messages), so a bad
 * value stops `npm start` before anything is started rather than at the data plane's first
 * start. The control plane's schema lives in control-plane/, which this process may not import
 * (the planes never import each other): the control-plane variables the supervisor needs are
 * declared here with that schema's defaults, and the control plane checks the rest itself.
 * Only the SUPERVISOR_* settings are new.
 */
const ms = (def: number) => z.coerce.number().int().positive().default(def);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** More workers than this is a typo, not a machine: each one is a whole data-plane process. */
export const MAX_DATA_PLANE_WORKERS = 256;

export const supervisorEnvSchema = dataPlaneEnvSchema
  .extend({
    /** The control plane's listener (its own schema's default); the port comes from the control plane itself. */
    CONTROL_PLANE_HOST: z.string().trim().min(1).default('127.0.0.1'),
    /** Set: the control plane's MCP bearer token(s), checked by the control plane. Both unset: one is generated. */
    MCP_TOKEN: optionalString,
    MCP_TOKENS: optionalString,
    /** First restart delay of a crashed child; doubles per crash up to the max. */
    SUPERVISOR_RESTART_DELAY_MS: ms(1_000),
    SUPERVISOR_RESTART_MAX_DELAY_MS: ms(30_000),
    /** A child that stayed up this long before it crashed is restarted after the first delay again. */
    SUPERVISOR_RESTART_RESET_MS: ms(60_000),
    /** How long a child may take from spawn to answering /healthz. */
    SUPERVISOR_START_TIMEOUT_MS: ms(120_000),
    /** On Ctrl-C/SIGTERM, how long the planes get to exit before they are killed (default: DRAIN_TIMEOUT_MS + 10 s). */
    SUPERVISOR_STOP_TIMEOUT_MS: optionalString.pipe(z.coerce.number<string | undefined>().int().positive().optional()),
    /**
     * Data-plane processes sharing PUBLIC_PORT (SO_REUSEPORT); worker i's admin listener is on
     * ADMIN_PORT + i. Unset or empty: one per CPU this process may use.
     */
    DATA_PLANE_WORKERS: optionalString.pipe(
      z.coerce
        .number<string | undefined>({ error: 'expected a number of processes (or empty: one per CPU)' })
        .int('must be a whole number of processes')
        .min(1, 'must be at least 1')
        .max(MAX_DATA_PLANE_WORKERS, `must be at most ${MAX_DATA_PLANE_WORKERS}`)
        .default(availableParallelism()),
    ),
  })
  .superRefine((c, ctx) => {
    // Worker i listens for admin on ADMIN_PORT + i: the last one must still be a port.
    if (c.ADMIN_PORT > 0 && c.ADMIN_PORT + c.DATA_PLANE_WORKERS - 1 > 65535)
      ctx.addIssue({
        code: 'custom',
        path: ['DATA_PLANE_WORKERS'],
        message: `${c.DATA_PLANE_WORKERS} workers need admin ports ADMIN_PORT … ADMIN_PORT + ${c.DATA_PLANE_WORKERS - 1}, beyond 65535: lower ADMIN_PORT or the worker count`,
      });
  });

export type SupervisorConfig = z.infer<typeof supervisorEnvSchema>;

/** One line per bad variable: its name and the problem, never its value (it may be a secret). */
export function loadSupervisorConfig(env: NodeJS.ProcessEnv): SupervisorConfig {
  const parsed = supervisorEnvSchema.safeParse(env);
  const problem = parsed.success ? adminListenerProblem(parsed.data) : null;
  if (problem) throw new ConfigError(problem);
  if (parsed.success) return { ...parsed.data, ...connectionUrls(parsed.data) };
  throw new ConfigError(parsed.error.issues.map((i) => `invalid ${i.path.join('.') || '(environment)'}: ${i.message}`).join('\n'));
}

export const stopTimeoutMs = (c: SupervisorConfig): number => c.SUPERVISOR_STOP_TIMEOUT_MS ?? c.DRAIN_TIMEOUT_MS + 10_000;
