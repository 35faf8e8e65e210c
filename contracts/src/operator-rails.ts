import { z } from 'zod';
import { graceRecordSchema, type GraceRecord } from './guard.js';
import { redisKeys } from './redis-keys.js';
import type { RedisLike } from './redis-client.js';

/**
 * Issue 18's rails on what an operator may do to a key, shared by every operator surface (the
 * data plane's admin routes and CLI, the control plane's MCP tools).
 */

/**
 * MCP_MAX_PENALTY's default: an operator-set penalty longer than this needs `force: true`, and
 * the record says it was forced (CrowdSec's MCP servers cap ban durations at 24 h the same way).
 */
export const DEFAULT_MAX_OPERATOR_PENALTY_SECONDS = 24 * 3600;

/**
 * MCP_MAX_PENALTY as every plane parses it: whole seconds (the control plane's MCP reads the same
 * variable the same way); empty or unset means the default.
 */
export const operatorPenaltyCapSchema = z
  .string()
  .trim()
  .optional()
  .transform((v, ctx) => {
    if (v === undefined || v === '') return DEFAULT_MAX_OPERATOR_PENALTY_SECONDS;
    const seconds = /^\d{1,9}$/.test(v) ? Number(v) : NaN;
    if (!(seconds >= 1)) {
      ctx.addIssue({ code: 'custom', message: 'expected whole seconds, e.g. 86400 for 24 h' });
      return z.NEVER;
    }
    return seconds;
  });

export type PenaltyCapVerdict = { ok: true; forced: boolean } | { ok: false; message: string };

/** Whether an operator may set a penalty this long; `forced` is true only when force was needed. */
export function checkPenaltyCap(durationSeconds: number, capSeconds: number, force: boolean): PenaltyCapVerdict {
  if (durationSeconds <= capSeconds) return { ok: true, forced: false };
  if (force) return { ok: true, forced: true };
  return {
    ok: false,
    message: `a penalty of ${durationSeconds} s is longer than the operator cap MCP_MAX_PENALTY (${capSeconds} s); send force: true to set it anyway (the record will say it was forced)`,
  };
}

/**
 * Puts a key on the guard's grace list (redisKeys.pardonGrace, GraceRecord, PX = the grace): the
 * guard records what its detectors would do to the key meanwhile, as shadow incidents, but does
 * not penalise it. A pardon of a guard penalty does this at once, so the next poll cannot
 * re-penalise the key before the guard notices the pardon itself.
 */
export async function setPardonGrace(redis: RedisLike, record: GraceRecord, now: number = Date.now()): Promise<void> {
  const rec = graceRecordSchema.parse(record);
  const ttl = rec.until - now;
  if (ttl <= 0) throw new RangeError(`grace for ${rec.keyId} ends in the past`);
  await redis.call('SET', redisKeys.pardonGrace(rec.keyId), JSON.stringify(rec), 'PX', ttl);
}
