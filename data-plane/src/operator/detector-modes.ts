import { DETECTORS, getDetectorModes, setDetectorMode, type DetectorId, type DetectorMode } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Sql } from '../store/db.js';
import { audit } from './audit.js';
import { recordAction, type ActionRecorderDeps } from './record.js';

/**
 * Detector rollout at run time (issue 18): an operator puts one detector in `enforce` or
 * `shadow`, or clears it back to the guard's configuration, through the contracts helper MCP
 * uses too. The guard re-reads the modes every poll. A change is audited and leaves an operator
 * incident (mode_change): its `mode` is the run-time mode set, or for a clear the one removed
 * (evidence.cleared = 1; the configured mode it returns to is the guard's configuration). Setting
 * what is already set changes nothing and records nothing.
 */
export interface DetectorModesDeps extends ActionRecorderDeps {
  sql: Sql;
  redis: Redis;
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
  reason: string | null = null,
): Promise<{ detector: DetectorId; mode: DetectorMode | null; previous: DetectorMode | null; incidentId: string | null }> {
  const previous = (await getDetectorModes(deps.redis))[detector] ?? null;
  if (previous === mode) return { detector, mode, previous, incidentId: null };
  const now = Date.now();
  await setDetectorMode(deps.redis, detector, mode, now);
  const incidentId = await recordAction(deps, {
    action: 'mode_change',
    actor,
    reason,
    at: now,
    detector,
    mode: mode ?? previous ?? 'enforce',
    evidence: mode === null ? { cleared: 1 } : {},
    what: `Operator set detector ${detector} ${mode === null ? `from ${previous} back to its configured mode` : `to ${mode}${previous ? ` (was ${previous})` : ' (was its configured mode)'}`}: the guard applies it from its next poll.`,
  });
  await audit(deps, {
    actor,
    action: mode === null ? 'detector_mode.cleared' : 'detector_mode.set',
    detail: { detector, mode, previous, reason, incidentId },
  });
  return { detector, mode, previous, incidentId };
}
