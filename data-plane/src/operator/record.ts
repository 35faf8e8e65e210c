import { recordOperatorAction, type OperatorActionInput, type OperatorActionKey } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { KeyInfo } from '../store/keys.js';

/**
 * The data plane's operator surfaces (admin routes, CLI, portal) record each action as an
 * incident of source `operator` through the contracts function MCP uses too
 * (contracts/src/operator-action.ts). Recorded after the action happened: failing to write it
 * is told (`warn`, and the caller answers `incidentId: null`) and never undoes or hides the
 * action, which its audit row records as well.
 */
export interface ActionRecorderDeps {
  redis: Redis;
  /** INCIDENT_CAPACITY: the ring buffer the incident joins. */
  incidentCapacity: number;
  warn?: (message: string) => void;
}

export async function recordAction(deps: ActionRecorderDeps, input: OperatorActionInput): Promise<string | null> {
  try {
    return (await recordOperatorAction(deps.redis, input, deps.incidentCapacity)).id;
  } catch (err) {
    deps.warn?.(`operator incident not recorded (${(err as Error).message.split('\n')[0]})`);
    return null;
  }
}

export const keyRef = (k: KeyInfo): OperatorActionKey => ({
  id: k.id,
  prefix: k.prefix,
  ownerId: k.userId,
  ownerEmail: k.ownerEmail,
  tier: k.tier,
});
