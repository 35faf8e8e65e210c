import { channels, detectorModeEventSchema, DETECTORS, DETECTOR_MODES, redisKeys, type DetectorId, type DetectorMode } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';

/**
 * Writes of the run-time detector modes the guard reads every poll (modes.ts readModes):
 * an operator's mode for one detector (null: back to the configured one) in
 * redisKeys.detectorModes, and the event on channels.detectorModes for listeners that want it
 * at once. Used by MCP's set_detector_mode.
 */
export async function setModeOverride(redis: Redis, detector: DetectorId, mode: DetectorMode | null, now: number): Promise<void> {
  const event = JSON.stringify(detectorModeEventSchema.parse({ detector, mode, at: now }));
  const tx = redis.multi();
  if (mode === null) tx.hdel(redisKeys.detectorModes(), detector);
  else tx.hset(redisKeys.detectorModes(), detector, mode);
  await tx.publish(channels.detectorModes, event).exec();
}

/** The run-time overrides as stored (unknown detectors or modes left out). */
export async function readModeOverrides(redis: Redis): Promise<Map<DetectorId, DetectorMode>> {
  const runtime = await redis.hgetall(redisKeys.detectorModes());
  const out = new Map<DetectorId, DetectorMode>();
  for (const [d, m] of Object.entries(runtime)) {
    if ((DETECTORS as readonly string[]).includes(d) && (DETECTOR_MODES as readonly string[]).includes(m)) out.set(d as DetectorId, m as DetectorMode);
  }
  return out;
}
