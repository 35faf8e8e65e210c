import { readFileSync } from 'node:fs';
import { ConnectionEnvError, resolveConnectionUrls } from '@fluxgate/contracts';
import { mcpTokenConflict } from './mcp-env.js';
import { controlPlaneEnvSchema, type ControlPlaneConfig } from './schema.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the environment. On failure, one line per bad variable: its name and what is wrong,
 * never its value (it may be a secret).
 */
export function loadConfig(env: NodeJS.ProcessEnv): ControlPlaneConfig {
  const parsed = controlPlaneEnvSchema.safeParse(env);
  const conflict = parsed.success ? mcpTokenConflict(parsed.data) : null;
  if (conflict) throw new ConfigError(conflict);
  if (parsed.success) return { ...parsed.data, ...connectionUrls(parsed.data) };
  throw new ConfigError(parsed.error.issues.map((i) => `invalid ${i.path.join('.') || '(environment)'}: ${i.message}`).join('\n'));
}

/** DATABASE_URL/REDIS_URL with a password given on its own encoded into them (contracts/connection-env.ts). */
function connectionUrls(c: ControlPlaneConfig): { DATABASE_URL?: string; REDIS_URL?: string } {
  try {
    return resolveConnectionUrls(c, (path) => readFileSync(path, 'utf8'));
  } catch (e) {
    if (e instanceof ConnectionEnvError) throw new ConfigError(e.message, { cause: e });
    throw e;
  }
}

/** For tests: the defaults with overrides, validated the same way. */
export const configWith = (overrides: Record<string, string> = {}): ControlPlaneConfig => loadConfig(overrides);

export const ollamaHost = (c: ControlPlaneConfig): string => c.OLLAMA_HOST ?? c.OLLAMA_URL ?? 'http://127.0.0.1:11434';
export const pollIntervalMs = (c: ControlPlaneConfig): number => Math.round(c.POLL_INTERVAL * 1000);
