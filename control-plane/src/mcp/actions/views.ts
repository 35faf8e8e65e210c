import type { PenaltyRecord } from '@fluxgate/contracts';
import { iso } from '../schemas.js';

export type PenaltyView = PenaltyRecord & { expiresAtIso: string; remainingSeconds: number };

export const penaltyView = (p: PenaltyRecord, now: number): PenaltyView => ({
  ...p,
  expiresAtIso: iso(p.expiresAt),
  remainingSeconds: Math.max(0, Math.ceil((p.expiresAt - now) / 1000)),
});
