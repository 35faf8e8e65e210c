import { readFileSync } from 'node:fs';
import { ConnectionEnvError, resolveConnectionUrls } from '@fluxgate/contracts';
import { z } from 'zod';
import { adminListenerProblem } from './admin-listener.js';
import { dataPlaneEnvSchema, type DataPlaneConfig } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parse the environment. On failure, one line per bad variable: its name, what is wrong, and
 * never its value (it may be a secret).
 */
export function loadConfig(env: NodeJS.ProcessEnv): DataPlaneConfig {
  const parsed = dataPlaneEnvSchema.safeParse(env);
  if (parsed.success) {
    const problem = adminListenerProblem(parsed.data);
    if (problem) throw new ConfigError(problem);
    return { ...parsed.data, ...connectionUrls(parsed.data) };
  }
  const lines = parsed.error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    return `invalid ${name}: ${issue.message}`;
  });
  throw new ConfigError(lines.join('\n'));
}

/**
 * DATABASE_URL/REDIS_URL with a password given on its own (PGPASSWORD, DATABASE_PASSWORD_FILE,
 * REDIS_PASSWORD…) encoded into them, or built from PGHOST…; see contracts/connection-env.ts.
 */
export function connectionUrls(c: DataPlaneConfig): { DATABASE_URL?: string; REDIS_URL?: string } {
  try {
    return resolveConnectionUrls(c, (path) => readFileSync(path, 'utf8'));
  } catch (e) {
    if (e instanceof ConnectionEnvError) throw new ConfigError(e.message, { cause: e });
    throw e;
  }
}

/** For tests and tooling: the defaults with overrides, validated the same way. */
export function configWith(overrides: Partial<Record<keyof DataPlaneConfig, string>>): DataPlaneConfig {
  return loadConfig(overrides as NodeJS.ProcessEnv);
}

export { z };
