/**
 * The replay harness (`npm run replay`, and control-plane/test/replay.test.ts): a private
 * redis-server, the real data plane (spawned from data-plane/dist, TLS, counters flushed every
 * 200 ms), the real control plane (spawned from control-plane/dist, POLL_INTERVAL 1 s), an
 * OpenAI-compatible model stand-in and an Ollama stand-in for summaries. Every scenario runs at
 * once for `seconds`; the result says, per scenario, whether and how fast it was penalised.
 */
import { getIpBlock, redisKeys } from '@fluxgate/contracts';
import { Redis } from 'ioredis';
import { startGateway } from '../../../data-plane/test/support/gateway.js';
import { createIncidentStore } from '../../src/incidents/store.js';
import { startOllamaStandIn } from '../support/ollama-standin.js';
import { startControlPlane } from '../support/process.js';
import { spawnRedisServer } from '../support/services.js';
import { credentialStuffing, SCENARIOS, type ScenarioContext, type ScenarioResult } from './scenarios.js';
import { startReplayUpstream } from './upstream.js';

export interface ReplayReport {
  pollIntervalSeconds: number;
  counterFlushMs: number;
  results: ScenarioResult[];
  incidents: Array<{
    id: string;
    at: number;
    detector: string;
    keyId: string | null;
    clientIp: string | null;
    action: string;
    level: string | null;
    polls: number;
    summarySource: string | null;
  }>;
  benignPenalised: number;
}

export async function runReplay(opts: { seconds?: number } = {}): Promise<ReplayReport> {
  const seconds = opts.seconds ?? 20;
  const pollIntervalSeconds = 1;
  const counterFlushMs = 200;
  const redisServer = await spawnRedisServer();
  const upstream = await startReplayUpstream(['replay-model']);
  const ollama = await startOllamaStandIn();
  const redis = new Redis(redisServer.url);
  const gw = await startGateway({
    upstreams: upstream.url,
    redisUrl: redisServer.url,
    env: { TRUSTED_PROXIES: '127.0.0.1', COUNTER_FLUSH_MS: String(counterFlushMs) },
  });
  const cp = await startControlPlane({
    REDIS_URL: redisServer.url,
    DATABASE_URL: gw.db.url,
    POLL_INTERVAL: String(pollIntervalSeconds),
    OLLAMA_HOST: ollama.url,
  });
  try {
    const ctx: ScenarioContext = {
      baseUrl: gw.url,
      dispatcher: gw.dispatcher,
      key: async (tier) => gw.issueKey(undefined, tier),
      ipBlocked: async (ip) => (await getIpBlock(redis, ip)) !== null,
      deadline: performance.now() + seconds * 1000,
    };
    const results: ScenarioResult[] = [];
    const runs = SCENARIOS.map(async (s) => {
      const key = await ctx.key(s.tier);
      const out: ScenarioResult = {
        name: s.name,
        kind: s.kind,
        expectedDetector: s.detector ?? null,
        keyId: key.id,
        requests: 0,
        startedAt: Date.now(),
        detectedAfterSeconds: null,
        tiers: [],
      };
      results.push(out);
      await s.run(ctx, key, out);
    });
    const stuffing: ScenarioResult = {
      name: 'credential stuffing from one IP',
      kind: 'abuse',
      expectedDetector: 'credential_stuffing',
      keyId: null,
      requests: 0,
      startedAt: Date.now(),
      detectedAfterSeconds: null,
      tiers: [],
    };
    results.push(stuffing);
    await Promise.all([...runs, credentialStuffing(ctx, stuffing)]);

    const penalised = new Set(await redis.zrange(redisKeys.penaltyIndex(), 0, -1));
    const benignPenalised = results.filter(
      (r) => r.kind === 'benign' && ((r.keyId !== null && penalised.has(r.keyId)) || r.detectedAfterSeconds !== null),
    ).length;
    const store = createIncidentStore(redis, 10_000);
    const { incidents } = await store.list(1000);
    return {
      pollIntervalSeconds,
      counterFlushMs,
      results: results.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'abuse' ? -1 : 1)),
      incidents: incidents.map((i) => ({
        id: i.id,
        at: i.at,
        detector: i.detector,
        keyId: i.keyId,
        clientIp: i.clientIp,
        action: i.action,
        level: i.level,
        polls: i.polls,
        summarySource: i.summarySource,
      })),
      benignPenalised,
    };
  } finally {
    redis.disconnect();
    await cp.stop();
    await gw.stop();
    await Promise.allSettled([upstream.close(), ollama.close()]);
    await redisServer.kill();
  }
}
