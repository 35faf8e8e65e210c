import { DETECTORS, type DetectorId, type Incident } from '@fluxgate/contracts';
import type { McpContext } from '../context.js';
import { ToolInputError } from '../errors.js';
import { queryIncidents } from '../incident-query.js';

/**
 * Which detector an operator action on a key answers (an incident needs one): the one the
 * operator named, else the incident acted on, else the key's latest incident in the buffer.
 */
export async function detectorFor(
  ctx: McpContext,
  keyId: string,
  named: DetectorId | undefined,
  linked: Incident | null,
  verb: string,
): Promise<DetectorId> {
  if (named) return named;
  if (linked) return linked.detector;
  const latest = await queryIncidents(ctx.redis, { keyId }, 1);
  const found = latest.items[0]?.detector;
  if (found) return found;
  throw new ToolInputError(
    `detector: this key has no incident to attach the ${verb} to; pass detector (one of ${DETECTORS.join(', ')}) to say which abuse it answers`,
  );
}
