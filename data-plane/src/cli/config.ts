import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  connectionEnvShape,
  DEFAULT_INCIDENT_CAPACITY,
  DEFAULT_PARDON_GRACE_SECONDS,
  operatorPenaltyCapSchema,
  resolveConnectionUrls,
} from '@fluxgate/contracts';
import { z } from 'zod';
import { checkSecretFileSync, type Warn } from '../bootstrap/secret-file.js';

const runtimeSchema = z.object({ DATABASE_URL: z.string().optional(), REDIS_URL: z.string().optional() });

/**
 * The service URLs `npm start` wrote for operator tools; {} when absent or unreadable, and when
 * another user owns the file (it names the databases we would write to, and their passwords).
 */
export function readRuntimeFile(stateDir: string, warn: Warn = () => undefined): { DATABASE_URL?: string; REDIS_URL?: string } {
  const path = join(stateDir, 'runtime.json');
  try {
    if (!checkSecretFileSync(path, 'runtime file', warn)) return {};
  } catch (err) {
    warn(`ignoring it: ${(err as Error).message}`);
    return {};
  }
  try {
    const parsed = runtimeSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    return parsed.success ? parsed.data : {};
  } catch {
    return {};
  }
}

/**
 * The CLI's own configuration: the two URLs it needs, from flags or the environment, and the
 * operator rails it shares with the admin routes and MCP, parsed in this one place (the plane's
 * config is separate and has far more in it).
 */
const emptyAsUnset = (v: unknown) => (v === '' ? undefined : v);

const cliConfigSchema = z.object({
  DATABASE_URL: z.preprocess(
    emptyAsUnset,
    z
      .string()
      .regex(/^postgres(ql)?:\/\/[^\s]+$/, 'expected postgres://user[:password]@host[:port]/database')
      .default('postgres://postgres@127.0.0.1:5432/postgres'),
  ),
  REDIS_URL: z.preprocess(
    emptyAsUnset,
    z
      .string()
      .regex(/^rediss?:\/\/[^\s]+$/, 'expected redis://[user:password@]host[:port][/db]')
      .default('redis://127.0.0.1:6379'),
  ),
  MCP_MAX_PENALTY: z.preprocess(emptyAsUnset, operatorPenaltyCapSchema),
  GUARD_PARDON_GRACE_SECONDS: z.preprocess(emptyAsUnset, z.coerce.number().int().min(1).default(DEFAULT_PARDON_GRACE_SECONDS)),
  INCIDENT_CAPACITY: z.preprocess(emptyAsUnset, z.coerce.number().int().min(10).max(10_000_000).default(DEFAULT_INCIDENT_CAPACITY)),
});

export type CliConfig = z.infer<typeof cliConfigSchema>;

const optionalUrl = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const connectionParts = z.object({ DATABASE_URL: optionalUrl, REDIS_URL: optionalUrl, ...connectionEnvShape });

/**
 * Precedence: flags, then the environment, then the URLs a running `npm start` recorded in
 * `<state dir>/runtime.json` (its embedded Postgres listens on a private port), then defaults.
 */
export function loadCliConfig(
  env: Readonly<Record<string, string | undefined>>,
  flags: { databaseUrl?: string; redisUrl?: string },
  runtime: { DATABASE_URL?: string; REDIS_URL?: string } = readRuntimeFile(env.FLUXGATE_STATE_DIR || '.fluxgate'),
  readSecret: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): { ok: true; config: CliConfig } | { ok: false; error: string } {
  // The environment's URLs as the planes resolve them: PGHOST…/PGPASSWORD and REDIS_PASSWORD too,
  // so the CLI works inside a compose or Kubernetes container, which has the parts, not the URLs.
  const parts = connectionParts.safeParse(env);
  if (!parts.success)
    return { ok: false, error: `${parts.error.issues[0]?.path.join('.') ?? 'config'}: ${parts.error.issues[0]?.message ?? 'invalid'}` };
  let fromEnv: { DATABASE_URL?: string; REDIS_URL?: string };
  try {
    fromEnv = resolveConnectionUrls(parts.data, readSecret);
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const parsed = cliConfigSchema.safeParse({
    DATABASE_URL: flags.databaseUrl ?? (fromEnv.DATABASE_URL || runtime.DATABASE_URL),
    REDIS_URL: flags.redisUrl ?? (fromEnv.REDIS_URL || runtime.REDIS_URL),
    MCP_MAX_PENALTY: env.MCP_MAX_PENALTY,
    GUARD_PARDON_GRACE_SECONDS: env.GUARD_PARDON_GRACE_SECONDS,
    INCIDENT_CAPACITY: env.INCIDENT_CAPACITY,
  });
  if (parsed.success) return { ok: true, config: parsed.data };
  // One line naming the variable and the expected form; never the value (it may hold a password).
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${issue?.path.join('.') ?? 'config'}: ${issue?.message ?? 'invalid'}` };
}

/** host:port of a URL, for error messages that must not print credentials. */
export function describeEndpoint(url: string): string {
  try {
    const u = new URL(url);
    return u.port ? `${u.hostname}:${u.port}` : u.hostname;
  } catch {
    return '(unparsable URL)';
  }
}
