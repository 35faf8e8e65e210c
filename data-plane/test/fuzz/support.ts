/**
 * Shared settings of the fuzz properties. `npm test` runs each property a bounded number of
 * times with a fixed seed (reproducible, a failure names its input); `npm run fuzz` runs the same
 * properties FUZZ_SCALE times as often, and FUZZ_SEED explores other inputs.
 */
import type { Parameters } from 'fast-check';

const positive = (text: string | undefined, fallback: number): number => {
  const n = Number(text);
  return Number.isFinite(n) && n > 0 ? n : fallback;
};

/** Multiplier on every property's run count (1 in `npm test`). */
export const FUZZ_SCALE = positive(process.env.FUZZ_SCALE, 1);
/** Base seed; each property adds its own offset so the properties do not share inputs. */
export const FUZZ_SEED = positive(process.env.FUZZ_SEED, 0x12f0);

/** fast-check parameters for a property whose bounded run count is `runs`. */
export function fuzzParams<T>(offset: number, runs: number): Parameters<T> {
  return { seed: FUZZ_SEED + offset, numRuns: Math.ceil(runs * FUZZ_SCALE) };
}

/** Test timeout for a property: `boundedMs` in `npm test`, scaled for `npm run fuzz`. */
export const fuzzTimeout = (boundedMs: number): number => Math.ceil(boundedMs * FUZZ_SCALE);
