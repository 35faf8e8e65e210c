import { redisKeys, type DetectorId, type DetectorMode } from '@fluxgate/contracts';
import type { Redis } from 'ioredis';
import type { Ollama } from 'ollama';
import type { BulkReader } from '../collect/bulk-reader.js';
import { createCollector } from '../collect/collector.js';
import { pollIntervalMs } from '../config/load.js';
import type { ControlPlaneConfig } from '../config/schema.js';
import { createArchiveQueue } from '../incidents/archive-queue.js';
import { createIncidentStore } from '../incidents/store.js';
import type { Logger } from '../log/logger.js';
import type { GuardMetrics } from '../metrics/registry.js';
import { loadAllowlist } from '../store/allowlist.js';
import type { Sql } from '../store/db.js';
import { createSummariser } from '../summarise/summariser.js';
import { buildAllowlist, parseAllowlistConfig, type AllowEntry, type Allowlist } from './allowlist.js';
import { createApplier } from './apply.js';
import { baselineFor, updateBaseline, type Baseline } from './baseline.js';
import { loadBaselines, saveBaselines, SAVE_EVERY_CYCLES } from './baseline-store.js';
import { createKeyDirectory } from './directory.js';
import { configuredModes, readModes } from './modes.js';
import { decide, needsDetail } from './policy.js';
import { settingsFromConfig } from './settings.js';
import { checkWatch } from './watch.js';

/**
 * The guard loop: every POLL_INTERVAL, while this process holds the lease,
 *   modes + allowlist → snapshot (collect/) → key metadata → decisions (policy.ts, pure) →
 *   expiries and pardons (watch.ts) → actions and incidents (apply.ts) → archive.
 * Summaries run beside it (summarise/), never in the cycle's way. A failed cycle is logged and
 * counted; the next poll starts over (every step is idempotent).
 */
const BACKFILL_SCAN = 200;
const BACKFILL_EVERY = 30;
/** How far back of the previous backfill an operator incident's time may be and still be archived (other hosts' clocks). */
const OPERATOR_SLACK_MS = 5 * 60_000;

export interface GuardDeps {
  config: ControlPlaneConfig;
  redis: Redis;
  reader: BulkReader;
  sql: Sql | null;
  ollama: Pick<Ollama, 'chat'>;
  metrics: GuardMetrics;
  log: Logger;
  now?: () => number;
}

export interface Guard {
  start(isLeader: () => boolean): void;
  stop(): Promise<void>;
  /** One cycle now (the loop calls it; tests too). */
  runCycle(): Promise<void>;
  /** Called when this process becomes the leader: cached windows may be stale. */
  onLeadership(): void;
  status(): Record<string, unknown>;
  /** Resolves when queued summaries are written (tests, shutdown). */
  summariesIdle(): Promise<void>;
}

export function createGuard(deps: GuardDeps): Guard {
  const { config, redis, metrics, log } = deps;
  const now = deps.now ?? Date.now;
  const intervalMs = pollIntervalMs(config);
  const settings = settingsFromConfig(config);
  const configured = configuredModes(config.GUARD_DEFAULT_MODE, config.GUARD_MODES);
  const staticAllow = parseAllowlistConfig(config.GUARD_ALLOWLIST);
  if (staticAllow.invalid.length > 0)
    log.warn({ entries: staticAllow.invalid.length }, 'GUARD_ALLOWLIST entries ignored (expected key:, account: or cidr:)');
  let modes: Map<DetectorId, DetectorMode> = new Map(configured);
  let allowlist: Allowlist = buildAllowlist(staticAllow.entries).allowlist;
  let activePenalties = 0;

  const directory = createKeyDirectory({ sql: deps.sql, log });
  let baselines = new Map<string, Baseline>();
  let baselinesLoaded: Promise<void> | null = null;
  const collector = createCollector({
    reader: deps.reader,
    lookbackBuckets: settings.lookbackSeconds / 10,
    needsDetail: (keyId, totals) => needsDetail(totals, directory.tierOf(keyId), settings),
    countMalformed: (kind, n) => metrics.countMalformed(kind, n),
    now,
  });
  const store = createIncidentStore(redis, config.INCIDENT_CAPACITY);
  const archive = createArchiveQueue({ sql: deps.sql, store, log });
  const summariser = createSummariser({
    ollama: deps.ollama,
    model: config.LLM_MODEL,
    concurrency: config.LLM_CONCURRENCY,
    retryMs: config.LLM_RETRY_MS,
    retryQueue: config.LLM_RETRY_QUEUE,
    save: async (s) => {
      const ok = await store.saveSummary(s);
      if (ok) archive.push(s.id);
      return ok;
    },
    load: (id) => store.get(id),
    onSummary: (source) => metrics.countSummary(source),
    onFailure: (reason) => metrics.summaryFailures.inc({ reason }),
    log,
    now,
  });
  const applier = createApplier({
    redis,
    store,
    metrics,
    log,
    archive: (id) => archive.push(id),
    summarise: (i) => summariser.enqueue(i),
    settings: {
      maxLevel: config.GUARD_MAX_LEVEL,
      penaltySeconds: config.GUARD_PENALTY_SECONDS,
      ipBlockSeconds: config.GUARD_IP_BLOCK_SECONDS,
      episodeQuietSeconds: config.GUARD_EPISODE_QUIET_SECONDS,
      offenceMemorySeconds: config.GUARD_OFFENCE_MEMORY_SECONDS,
    },
  });
  metrics.observe({ activePenalties: () => activePenalties, modes: () => modes });

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | null = null;
  let stopped = false;
  let cycles = 0;
  let backfillDue = true;
  let lastCycleAt = 0;
  let lastCycleMs = 0;

  async function refreshAllowlist(): Promise<void> {
    if (!deps.sql) return;
    let rows: AllowEntry[];
    try {
      rows = await loadAllowlist(deps.sql);
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'allowlist not re-read; keeping the last one');
      return;
    }
    const built = buildAllowlist([...staticAllow.entries, ...rows]);
    metrics.countMalformed('allowlist', built.invalid.length);
    allowlist = built.allowlist;
  }

  /** A new leader starts from the baselines its predecessor saved (never blocks on it twice). */
  function loadSavedBaselines(): Promise<void> {
    baselinesLoaded ??= loadBaselines(redis, (n) => metrics.countMalformed('baseline', n))
      .then((saved) => {
        // Whichever saw the later window wins (this process may have led before).
        for (const [id, b] of baselines) if ((saved.get(id)?.lastBucket ?? -Infinity) < b.lastBucket) saved.set(id, b);
        baselines = saved;
      })
      .catch((err: unknown) => {
        baselinesLoaded = null;
        log.debug({ err: (err as Error).message }, 'saved baselines not loaded; retrying next cycle');
      });
    return baselinesLoaded;
  }

  /**
   * Incidents stored without a summary (a leader that stopped with summaries queued, a save
   * that failed) are summarised by whoever leads next: the newest BACKFILL_SCAN are checked on
   * taking the lead and every BACKFILL_EVERY cycles. On taking the lead they are also archived
   * again (an upsert), in case the previous leader's archive writes were still pending.
   * Operator incidents the data plane wrote (admin routes, CLI, portal: it has no archive of its
   * own) are archived here too: those changed since the previous backfill, with OPERATOR_SLACK_MS
   * for the clocks of other hosts (an upsert, so archiving one twice changes nothing).
   */
  let lastBackfillAt: number | null = null;
  async function backfill(rearchive: boolean): Promise<void> {
    const { incidents, skipped } = await store.list(BACKFILL_SCAN);
    metrics.countMalformed('incident', skipped);
    const since = lastBackfillAt === null ? -Infinity : lastBackfillAt - OPERATOR_SLACK_MS;
    lastBackfillAt = now();
    for (const i of incidents) {
      if (i.summary === null) summariser.enqueue(i);
      if (rearchive || (i.source === 'operator' && i.updatedAt >= since)) archive.push(i.id);
    }
  }

  async function runCycle(): Promise<void> {
    const started = performance.now();
    await loadSavedBaselines();
    if (backfillDue || cycles % BACKFILL_EVERY === 0) {
      await backfill(backfillDue);
      backfillDue = false;
    }
    const endTotal = metrics.cycleDuration.startTimer({ phase: 'total' });
    modes = await readModes(redis, configured, (n) => metrics.countMalformed('mode', n));
    await refreshAllowlist();

    const endCollect = metrics.cycleDuration.startTimer({ phase: 'collect' });
    const snapshot = await collector.collect();
    await directory.ensure(
      snapshot.keys.map((k) => k.keyId),
      snapshot.at,
    );
    endCollect();
    metrics.activeKeys.set(snapshot.keys.length);
    metrics.activeIps.set(snapshot.ips.length);

    const endDetect = metrics.cycleDuration.startTimer({ phase: 'detect' });
    const last = snapshot.lastCompleteBucket;
    const decisions = decide(
      snapshot,
      {
        tierOf: (id) => directory.tierOf(id),
        baselineOf: (id) => (last === null ? null : baselineFor(baselines.get(id), last)),
        modeOf: (d) => modes.get(d) ?? 'enforce',
      },
      settings,
    );
    if (last !== null)
      for (const k of snapshot.keys) baselines.set(k.keyId, updateBaseline(baselines.get(k.keyId), last, k.lastWindowRequests ?? 0));
    if (cycles % 300 === 0) for (const [id, b] of baselines) if (b.lastBucket < snapshot.bucket - 360) baselines.delete(id);
    endDetect();
    if (cycles % SAVE_EVERY_CYCLES === SAVE_EVERY_CYCLES - 1) await saveBaselines(redis, baselines, settings.spike.warmupBuckets);

    const endApply = metrics.cycleDuration.startTimer({ phase: 'apply' });
    const t = now();
    await checkWatch({ redis, store, metrics, graceSeconds: config.GUARD_PARDON_GRACE_SECONDS, archive: (id) => archive.push(id) }, t);
    await applier.apply(decisions, (id) => directory.meta(id), allowlist, t);
    activePenalties = await redis.zcount(redisKeys.penaltyIndex(), `(${t}`, '+inf');
    await archive.flush();
    endApply();
    endTotal();
    cycles++;
    lastCycleAt = t;
    lastCycleMs = Math.round(performance.now() - started);
    if (decisions.length > 0) log.info({ decisions: decisions.length, cycleMs: lastCycleMs }, 'guard cycle acted');
  }

  const schedule = (isLeader: () => boolean): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      if (!isLeader()) {
        metrics.cycles.inc({ outcome: 'standby' });
        return schedule(isLeader);
      }
      running = runCycle()
        .then(() => metrics.cycles.inc({ outcome: 'ok' }))
        .catch((err: unknown) => {
          metrics.cycles.inc({ outcome: 'error' });
          log.warn({ err: (err as Error).message }, 'guard cycle failed; retrying at the next poll');
        })
        .finally(() => {
          running = null;
          schedule(isLeader);
        });
    }, intervalMs);
  };

  return {
    start(isLeader) {
      summariser.start();
      schedule(isLeader);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await summariser.stop();
      await archive.flush().catch(() => undefined);
      deps.reader.close();
    },
    runCycle,
    onLeadership() {
      collector.reset();
      baselinesLoaded = null;
      backfillDue = true;
    },
    status: () => ({ cycles, lastCycleAt, lastCycleMs, summaries: summariser.stats(), archivePending: archive.pending }),
    summariesIdle: () => summariser.idle(),
  };
}
