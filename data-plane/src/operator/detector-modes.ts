import { DETECTORS, getDetectorModes, setDetectorMode, type DetectorId, type DetectorMode } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Sql } from '../store/db.js';
import { audit } from './audit.js';

/**
 * Detector rollout at run time (issue 18): an operator puts one detector in `enforce` or
 * `shadow`, or clears it back to the guard's configuration, through the contracts helper MCP
 * uses too. The guard re-reads the modes every poll. Audited.
 */
export interface DetectorModesDeps {
  sql: Sql;
  redis: Redis;
  warn?: (message: string) => void;
}

/** Every detector with its run-time mode (null: it follows GUARD_DEFAULT_MODE / GUARD_MODES). */
export async function listDetectorModes(
  deps: Pick<DetectorModesDeps, 'redis'>,
): Promise<Array<{ detector: DetectorId; mode: DetectorMode | null }>> {
  const set = await getDetectorModes(deps.redis);
  return DETECTORS.map((detector) => ({ detector, mode: set[detector] ?? null }));
}

export async function changeDetectorMode(
  deps: DetectorModesDeps,
  detector: DetectorId,
  mode: DetectorMode | null,
  actor: string,
): Promise<{ detector: DetectorId; mode: DetectorMode | null; previous: DetectorMode | null }> {
  const previous = (await getDetectorModes(deps.redis))[detector] ?? null;
  await setDetectorMode(deps.redis, detector, mode);
  await audit(deps, { actor, action: mode === null ? 'detector_mode.cleared' : 'detector_mode.set', detail: { detector, mode, previous } });
  return { detector, mode, previous };
}
