import { DETECTORS, DETECTOR_MODES, redisKeys, type DetectorId, type DetectorMode } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';

/**
 * Each detector's mode: GUARD_DEFAULT_MODE, then GUARD_MODES, then what an operator set at run
 * time in redisKeys.detectorModes (issue 18: admin route, CLI and MCP write it later), re-read
 * every poll. Unknown detectors or modes in the hash are ignored and counted.
 */
export function configuredModes(
  defaultMode: DetectorMode,
  overrides: ReadonlyMap<DetectorId, DetectorMode>,
): Map<DetectorId, DetectorMode> {
  return new Map(DETECTORS.map((d) => [d, overrides.get(d) ?? defaultMode]));
}

export async function readModes(
  redis: Redis,
  configured: ReadonlyMap<DetectorId, DetectorMode>,
  onMalformed: (n: number) => void,
): Promise<Map<DetectorId, DetectorMode>> {
  const runtime = await redis.hgetall(redisKeys.detectorModes());
  const modes = new Map(configured);
  let bad = 0;
  for (const [d, m] of Object.entries(runtime)) {
    if ((DETECTORS as readonly string[]).includes(d) && (DETECTOR_MODES as readonly string[]).includes(m))
      modes.set(d as DetectorId, m as DetectorMode);
    else bad++;
  }
  onMalformed(bad);
  return modes;
}
