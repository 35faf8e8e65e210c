import type { OperatorDeps } from '../../operator/penalty.js';
import type { CliContext } from '../context.js';

/** The operator rails' dependencies from the CLI's own clients and configuration. */
export async function operatorDeps(ctx: CliContext): Promise<OperatorDeps> {
  return {
    sql: ctx.sql(),
    redis: await ctx.redis(),
    capSeconds: ctx.config.MCP_MAX_PENALTY,
    graceSeconds: ctx.config.GUARD_PARDON_GRACE_SECONDS,
    incidentCapacity: ctx.config.INCIDENT_CAPACITY,
    warn: ctx.warn,
  };
}

export const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
