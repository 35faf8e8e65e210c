import { detectorModeEventSchema } from './guard.js';
import { DETECTORS, DETECTOR_MODES, type DetectorId, type DetectorMode } from './incident.js';
import { channels, redisKeys } from './redis-keys.js';
import { runSteps, type RedisLike } from './redis-client.js';

/**
 * Detector modes set at run time by an operator (issue 18's detector rollout), the one write path
 * for the admin route, the CLI and MCP. redisKeys.detectorModes is a hash: field = detector id,
 * value = the bare mode (`enforce` or `shadow`), which is what the guard re-reads every poll and
 * puts above GUARD_DEFAULT_MODE and GUARD_MODES; clearing the field returns the detector to its
 * configured mode. channels.detectorModes tells listeners at once (the guard does not need it).
 */
export const isDetector = (v: string): v is DetectorId => (DETECTORS as readonly string[]).includes(v);
export const isDetectorMode = (v: string): v is DetectorMode => (DETECTOR_MODES as readonly string[]).includes(v);

/** Sets (mode) or clears (null) a detector's run-time mode. */
export async function setDetectorMode(
  redis: RedisLike,
  detector: DetectorId,
  mode: DetectorMode | null,
  now: number = Date.now(),
): Promise<void> {
  const event = JSON.stringify(detectorModeEventSchema.parse({ detector, mode, at: now }));
  const write: [string, ...(string | number)[]] =
    mode === null ? ['HDEL', redisKeys.detectorModes(), detector] : ['HSET', redisKeys.detectorModes(), detector, mode];
  await runSteps(redis, [write, ['PUBLISH', channels.detectorModes, event]]);
}

/** The run-time modes now set (detectors without one follow the guard's configuration); junk fields are left out. */
export async function getDetectorModes(redis: RedisLike): Promise<Partial<Record<DetectorId, DetectorMode>>> {
  const flat = await redis.call('HGETALL', redisKeys.detectorModes());
  const out: Partial<Record<DetectorId, DetectorMode>> = {};
  const pairs = Array.isArray(flat) ? flat.map(String) : flat && typeof flat === 'object' ? Object.entries(flat).flat().map(String) : [];
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    const d = pairs[i]!;
    const m = pairs[i + 1]!;
    if (isDetector(d) && isDetectorMode(m)) out[d] = m;
  }
  return out;
}
