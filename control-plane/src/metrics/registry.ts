import { DETECTORS, DETECTOR_MODES, SUMMARY_SOURCES, type DetectorId, type DetectorMode, type SummarySource } from '@fluxgate/contracts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one control-plane process, on a Registry of its own. Labels are bounded
 * sets (detector ids, modes, sources, phases): never key ids, IPs or users — per-key numbers live
 * in Redis and in the incidents.
 */
export const CYCLE_PHASES = ['collect', 'detect', 'apply', 'total'] as const;
export type CyclePhase = (typeof CYCLE_PHASES)[number];
export const CYCLE_OUTCOMES = ['ok', 'error', 'standby'] as const;
export const MALFORMED_KINDS = [
  'usage',
  'ip_usage',
  'fingerprints',
  'penalty',
  'episode',
  'incident',
  'baseline',
  'mode',
  'allowlist',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];
export const ACTIONS = ['penalty', 'escalate', 'ip_block', 'shadow', 'suppressed', 'update'] as const;
export type ActionLabel = (typeof ACTIONS)[number];

export interface GuardMetrics {
  registry: Registry;
  cycleDuration: Histogram<'phase'>;
  cycles: Counter<'outcome'>;
  detections: Counter<'detector' | 'mode'>;
  actions: Counter<'action'>;
  summaries: Counter<'source'>;
  summaryFailures: Counter<'reason'>;
  malformed: Counter<'kind'>;
  leader: Gauge;
  activeKeys: Gauge;
  activeIps: Gauge;
  /** Where fluxgate_guard_active_penalties and the mode gauges read their values at scrape time. */
  observe(probes: { activePenalties: () => number; modes: () => ReadonlyMap<DetectorId, DetectorMode> }): void;
  countMalformed(kind: MalformedKind, n?: number): void;
  countSummary(source: SummarySource): void;
}

// A cycle reads Redis for up to a few hundred ms at 100k active keys; more than a poll interval is a problem.
const CYCLE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

export function createGuardMetrics(): GuardMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fluxgate_control_plane_' });
  let probes: Parameters<GuardMetrics['observe']>[0] | null = null;

  const cycleDuration = new Histogram({
    name: 'fluxgate_guard_cycle_duration_seconds',
    help: 'Guard cycle duration by phase',
    labelNames: ['phase'],
    buckets: CYCLE_BUCKETS,
    registers: [registry],
  });
  const cycles = new Counter({
    name: 'fluxgate_guard_cycles_total',
    help: 'Guard cycles by outcome (standby: not the leader)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const detections = new Counter({
    name: 'fluxgate_guard_detections_total',
    help: 'Detector trips (one per episode and poll) by detector and mode',
    labelNames: ['detector', 'mode'],
    registers: [registry],
  });
  const actions = new Counter({
    name: 'fluxgate_guard_actions_total',
    help: 'What the guard did with a detection',
    labelNames: ['action'],
    registers: [registry],
  });
  const summaries = new Counter({
    name: 'fluxgate_guard_summaries_total',
    help: 'Incident summaries written, by source',
    labelNames: ['source'],
    registers: [registry],
  });
  const summaryFailures = new Counter({
    name: 'fluxgate_guard_summary_failures_total',
    help: 'Model summary attempts that failed, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  const malformed = new Counter({
    name: 'fluxgate_guard_malformed_records_total',
    help: 'Records in Redis skipped as malformed or of an old format',
    labelNames: ['kind'],
    registers: [registry],
  });
  const leader = new Gauge({ name: 'fluxgate_guard_leader', help: '1 while this process holds the guard lease', registers: [registry] });
  const activeKeys = new Gauge({ name: 'fluxgate_guard_active_keys', help: 'API keys in the last snapshot', registers: [registry] });
  const activeIps = new Gauge({ name: 'fluxgate_guard_active_ips', help: 'Client IPs in the last snapshot', registers: [registry] });
  new Gauge({
    name: 'fluxgate_guard_active_penalties',
    help: 'Live penalties in the penalty box (all setters), as of the last cycle',
    registers: [registry],
    collect() {
      this.set(probes?.activePenalties() ?? 0);
    },
  });
  new Gauge({
    name: 'fluxgate_guard_detector_mode',
    help: 'Current mode of each detector (1 on the active mode)',
    labelNames: ['detector', 'mode'],
    registers: [registry],
    collect() {
      const modes = probes?.modes();
      for (const d of DETECTORS) for (const m of DETECTOR_MODES) this.set({ detector: d, mode: m }, modes?.get(d) === m ? 1 : 0);
    },
  });
  // Zero series exist from the start, so rate() works before the first event.
  for (const d of DETECTORS) for (const m of DETECTOR_MODES) detections.inc({ detector: d, mode: m }, 0);
  for (const s of SUMMARY_SOURCES) summaries.inc({ source: s }, 0);
  for (const k of MALFORMED_KINDS) malformed.inc({ kind: k }, 0);
  for (const o of CYCLE_OUTCOMES) cycles.inc({ outcome: o }, 0);
  for (const a of ACTIONS) actions.inc({ action: a }, 0);

  return {
    registry,
    cycleDuration,
    cycles,
    detections,
    actions,
    summaries,
    summaryFailures,
    malformed,
    leader,
    activeKeys,
    activeIps,
    observe(p) {
      probes = p;
    },
    countMalformed: (kind, n = 1) => {
      if (n > 0) malformed.inc({ kind }, n);
    },
    countSummary: (source) => summaries.inc({ source }),
  };
}
