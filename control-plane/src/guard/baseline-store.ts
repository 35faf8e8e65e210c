import { parseJsonSafe, redisKeys } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Baseline } from './baseline.js';

/**
 * The leader's request-rate baselines, saved to Redis (redisKeys.guardBaselines, hash keyId →
 * JSON) every SAVE_EVERY_CYCLES cycles, so a standby that takes over compares keys with their own
 * history at once instead of after a warm-up of several minutes. Only warm baselines are saved;
 * the hash expires an hour after the last save (a stopped guard leaves nothing behind for long).
 */
export const SAVE_EVERY_CYCLES = 15;
const TTL_MS = 3600_000;
const CHUNK = 5000;

const entrySchema = z.object({ e: z.number().nonnegative(), n: z.number().int().nonnegative(), b: z.number().int() });

export async function saveBaselines(redis: Redis, baselines: ReadonlyMap<string, Baseline>, minWindows: number): Promise<number> {
  const key = redisKeys.guardBaselines();
  let saved = 0;
  let args: string[] = [];
  const flush = async (): Promise<void> => {
    if (args.length === 0) return;
    await redis.hset(key, ...args);
    args = [];
  };
  for (const [id, b] of baselines) {
    if (b.n < minWindows) continue;
    args.push(id, JSON.stringify({ e: Math.round(b.ewma * 1000) / 1000, n: b.n, b: b.lastBucket }));
    saved++;
    if (args.length >= 2 * CHUNK) await flush();
  }
  await flush();
  if (saved > 0) await redis.pexpire(key, TTL_MS);
  return saved;
}

/** Baselines a previous leader saved; malformed entries are skipped and counted. */
export async function loadBaselines(redis: Redis, onMalformed: (n: number) => void): Promise<Map<string, Baseline>> {
  const raw = await redis.hgetall(redisKeys.guardBaselines());
  const out = new Map<string, Baseline>();
  let bad = 0;
  for (const [id, text] of Object.entries(raw)) {
    const p = entrySchema.safeParse(parseJsonSafe(text));
    if (!p.success) {
      bad++;
      continue;
    }
    out.set(id, { ewma: p.data.e, n: p.data.n, lastBucket: p.data.b, before: { ewma: p.data.e, n: p.data.n } });
  }
  onMalformed(bad);
  return out;
}
