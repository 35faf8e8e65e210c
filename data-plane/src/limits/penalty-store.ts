/**
 * The penalty box protocol lives in contracts/ (penalty-protocol.ts), shared with the control
 * plane's guard; this module keeps the data plane's import path.
 */
export {
  buildPenaltyRecord,
  getPenalty,
  liftPenalty,
  listPenalties,
  parsePenalty,
  setPenalty,
  type PenaltyInput,
} from '@fluxgate/contracts';
