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
  if (parsed.success) return parsed.data;
  throw new ConfigError(parsed.error.issues.map((i) => `invalid ${i.path.join('.') || '(environment)'}: ${i.message}`).join('\n'));
}

/** For tests: the defaults with overrides, validated the same way. */
export const configWith = (overrides: Record<string, string> = {}): ControlPlaneConfig => loadConfig(overrides);

export const ollamaHost = (c: ControlPlaneConfig): string => c.OLLAMA_HOST ?? c.OLLAMA_URL ?? 'http://127.0.0.1:11434';
export const pollIntervalMs = (c: ControlPlaneConfig): number => Math.round(c.POLL_INTERVAL * 1000);
