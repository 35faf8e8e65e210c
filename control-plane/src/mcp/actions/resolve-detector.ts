import type { DetectorId, Incident } from '@fluxgate/contracts';
import type { McpContext } from '../context.js';
import { queryIncidents } from '../incident-query.js';

/**
 * Which detector an operator action on a key answers: the one the operator named, else the
 * incident acted on, else the key's latest incident in the buffer; null when none does (an
 * operator incident may name no detector).
 */
export async function detectorFor(
  ctx: McpContext,
  keyId: string,
  named: DetectorId | undefined,
  linked: Incident | null,
): Promise<DetectorId | null> {
  if (named) return named;
  if (linked) return linked.detector;
  const latest = await queryIncidents(ctx.redis, { keyId }, 1);
  return latest.items[0]?.detector ?? null;
}
