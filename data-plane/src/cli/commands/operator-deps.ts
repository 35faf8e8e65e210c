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

const UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** A CLI duration: whole seconds or a number with a unit (`900`, `90m`, `24h`, `7d`); null when it is neither. */
export function parseDurationFlag(text: string): number | null {
  const m = /^(\d{1,9})\s*([smhd]?)$/i.exec(text.trim());
  const seconds = m ? Number(m[1]) * UNIT_SECONDS[m[2]!.toLowerCase()]! : NaN;
  return Number.isSafeInteger(seconds) && seconds >= 1 ? seconds : null;
}
