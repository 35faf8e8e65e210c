import { PENALTY_LEVELS, type PenaltyLevel } from '@fluxgate/contracts';

/**
 * Repeat offenders climb: the level of a new penalty is one above the key's offences still in
 * memory (OFFENCE_MEMORY_SECONDS; older ones have decayed away), capped by GUARD_MAX_LEVEL
 * (issue 18's ceiling on the guard's own escalation).
 */
export function levelFor(priorOffences: number, maxLevel: number): { level: PenaltyLevel; cappedFrom: PenaltyLevel | null } {
  const wanted = PENALTY_LEVELS[Math.min(PENALTY_LEVELS.length - 1, Math.max(0, priorOffences))]!;
  const ceiling = PENALTY_LEVELS[Math.min(PENALTY_LEVELS.length, Math.max(1, maxLevel)) - 1]!;
  return levelIndex(wanted) > levelIndex(ceiling) ? { level: ceiling, cappedFrom: wanted } : { level: wanted, cappedFrom: null };
}

export const levelIndex = (l: PenaltyLevel): number => PENALTY_LEVELS.indexOf(l);
