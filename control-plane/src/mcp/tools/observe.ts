import {
  parseJsonSafe,
  redisKeys,
  REPLICA_RECORD_STALE_MS,
  replicaMetricsSchema,
  upstreamHealthReportSchema,
  UPSTREAM_STATES,
  USAGE_FIELDS,
} from '@fluxgate/contracts';
import { z } from 'zod';
import type { McpContext } from '../context.js';
import { decodeCursor, encodeCursor } from '../cursor.js';
import { prefixesOf } from '../keys.js';
import { liveReplicas, replicaMetrics } from '../replicas.js';
import { input, iso, USAGE_WINDOW_NAMES, type UsageWindowName } from '../schemas.js';
import { defineTool } from '../tool.js';
import { scanUsage, sumOf, totalsOf, usageTotalsSchema } from '../usage.js';

const F = USAGE_FIELDS;

/** The gateway as a whole over a window: the numbers behind get_gateway_metrics and fluxgate://metrics/current. */
export async function gatewayMetrics(ctx: McpContext, window: UsageWindowName): Promise<z.input<z.ZodObject<typeof gatewayMetricsOutput>>> {
  const now = ctx.now();
  const [scan, replicas, metrics, penalties, incidents] = await Promise.all([
    scanUsage(ctx.redis, window, now),
    liveReplicas(ctx.redis, now),
    replicaMetrics(ctx.redis, now),
    ctx.redis.zcount(redisKeys.penaltyIndex(), `(${now}`, '+inf'),
    ctx.redis.xrevrange(redisKeys.incidents(), '+', String(now - windowMs(window)), 'COUNT', 1001),
  ]);
  return {
    window,
    from: iso(scan.fromMs),
    to: iso(now),
    totals: totalsOf(scan.total),
    activeKeys: scan.keysSeen,
    truncated: scan.truncated,
    liveReplicas: replicas.length,
    replicas: metrics,
    activePenalties: penalties,
    incidentsInWindow: Math.min(incidents.length, 1000),
  };
}

const windowMs = (w: UsageWindowName): number => ({ '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '24h': 86_400_000 })[w];

export const gatewayMetricsOutput = {
  window: z.enum(USAGE_WINDOW_NAMES),
  from: z.string(),
  to: z.string(),
  totals: usageTotalsSchema.describe('all API keys together over the window'),
  activeKeys: z.number().int(),
  truncated: z.boolean().describe('more active keys than one scan reads; totals cover the first 20,000'),
  liveReplicas: z.number().int().describe('data-plane replicas with a recent heartbeat'),
  replicas: z.array(replicaMetricsSchema).describe("each replica's own metrics record (empty until replicas write them)"),
  activePenalties: z.number().int(),
  incidentsInWindow: z.number().int().describe('incidents opened in the window, counted up to 1,000'),
};

export const getGatewayMetrics = defineTool({
  name: 'get_gateway_metrics',
  role: 'reader',
  title: 'Gateway metrics',
  description:
    'Traffic over a window (5m, 15m, 1h, 24h): requests by status class, 429s, tokens, streams, latency, active keys, live replicas and their metrics, penalties and incidents.',
  input: { window: input.window },
  output: gatewayMetricsOutput,
  annotations: { readOnlyHint: true },
  async run({ window }, { ctx }) {
    const data = await gatewayMetrics(ctx, window);
    return {
      headline: `Last ${window}: ${data.totals.requests} requests (${data.totals.rateLimited} refused 429, ${data.totals.status5xx} 5xx) from ${data.activeKeys} key(s); ${data.activePenalties} in the penalty box.`,
      data,
    };
  },
});

const METRICS = {
  requests: (s: number[]) => sumOf(s, F.requests),
  tokens: (s: number[]) => sumOf(s, F.promptTokens) + sumOf(s, F.completionTokens),
  prompt_tokens: (s: number[]) => sumOf(s, F.promptTokens),
  completion_tokens: (s: number[]) => sumOf(s, F.completionTokens),
  rate_limited: (s: number[]) => sumOf(s, F.rateLimited),
  errors: (s: number[]) => sumOf(s, F.status5xx) + sumOf(s, F.upstreamErrors),
} as const;
type MetricName = keyof typeof METRICS;

export const listTopConsumers = defineTool({
  name: 'list_top_consumers',
  role: 'reader',
  title: 'Top consumers',
  description:
    'API keys ranked by a metric (requests, tokens, prompt_tokens, completion_tokens, rate_limited, errors) over a window, with prefix, owner and tier. Paged with cursor.',
  input: {
    metric: z
      .enum(Object.keys(METRICS) as [MetricName, ...MetricName[]])
      .default('tokens')
      .describe('What to rank by.'),
    window: input.window,
    limit: input.limit(10),
    cursor: input.cursor,
  },
  output: {
    metric: z.string(),
    window: z.enum(USAGE_WINDOW_NAMES),
    consumers: z.array(
      z.object({
        rank: z.number().int(),
        keyId: z.string(),
        keyPrefix: z.string().nullable(),
        ownerEmail: z.string().nullable(),
        tier: z.string().nullable(),
        value: z.number(),
        usage: usageTotalsSchema,
      }),
    ),
    activeKeys: z.number().int(),
    truncated: z.boolean(),
    nextCursor: z.string().nullable(),
  },
  annotations: { readOnlyHint: true },
  async run({ metric, window, limit, cursor }, { ctx }) {
    const offset = Number(decodeCursor(cursor, `top:${metric}:${window}`, /^\d{1,6}$/) ?? 0);
    const scan = await scanUsage(ctx.redis, window, ctx.now());
    const ranked = [...scan.perKey].map(([keyId, sums]) => ({ keyId, sums, value: METRICS[metric](sums) })).filter((r) => r.value > 0);
    ranked.sort((a, b) => b.value - a.value || a.keyId.localeCompare(b.keyId));
    const page = ranked.slice(offset, offset + limit);
    const meta = await prefixesOf(
      ctx.sql,
      page.map((r) => r.keyId),
    );
    const consumers = page.map((r, n) => ({
      rank: offset + n + 1,
      keyId: r.keyId,
      keyPrefix: meta.get(r.keyId)?.prefix ?? null,
      ownerEmail: meta.get(r.keyId)?.email ?? null,
      tier: meta.get(r.keyId)?.tier ?? null,
      value: r.value,
      usage: totalsOf(r.sums),
    }));
    const next = offset + limit < ranked.length ? encodeCursor(`top:${metric}:${window}`, String(offset + limit)) : null;
    const top = consumers[0];
    return {
      headline: top ? `Top by ${metric} over ${window}: ${top.keyPrefix ?? top.keyId} with ${top.value}.` : `No usage over ${window}.`,
      data: { metric, window, consumers, activeKeys: scan.keysSeen, truncated: scan.truncated, nextCursor: next },
    };
  },
});

const noStates = (): Record<(typeof UPSTREAM_STATES)[number], number> => ({ healthy: 0, ejected: 0, open: 0, half_open: 0 });

const upstreamRow = z.object({
  name: z.string(),
  url: z.string(),
  states: z.record(z.enum(UPSTREAM_STATES), z.number().int()).describe('how many replicas see it in each state'),
  healthyOn: z.number().int(),
  reportingReplicas: z.number().int(),
  outstanding: z.number().int(),
  requests: z.number().int(),
  failures: z.number().int(),
  lastError: z.string().nullable(),
});

export const getUpstreamHealth = defineTool({
  name: 'get_upstream_health',
  role: 'reader',
  title: 'Upstream health',
  description:
    "Model upstreams as the data-plane replicas see them (healthy, ejected, circuit open or half open), from the replicas' health records. status no_data means no replica has written one recently.",
  input: {},
  output: {
    status: z.enum(['ok', 'no_data']),
    note: z.string(),
    replicas: z.number().int().describe('replicas with a fresh health record'),
    upstreams: z.array(upstreamRow),
  },
  annotations: { readOnlyHint: true },
  async run(_args, { ctx }) {
    const now = ctx.now();
    const raw = await ctx.redis.hgetall(redisKeys.upstreamHealth());
    const reports = Object.values(raw).flatMap((t) => {
      const r = upstreamHealthReportSchema.safeParse(parseJsonSafe(t));
      return r.success && now - r.data.at <= REPLICA_RECORD_STALE_MS ? [r.data] : [];
    });
    if (reports.length === 0) {
      const note = `No data: no data-plane replica has written upstream health in the last ${REPLICA_RECORD_STALE_MS / 1000} s (${redisKeys.upstreamHealth()} is empty or stale). Replicas write it with their counter flush; one that does not yet write it reports nothing here. This says nothing about the upstreams themselves.`;
      return { headline: note, data: { status: 'no_data' as const, note, replicas: 0, upstreams: [] } };
    }
    const byName = new Map<string, z.infer<typeof upstreamRow>>();
    for (const report of reports) {
      for (const u of report.upstreams) {
        const row = byName.get(u.name) ?? {
          name: u.name,
          url: u.url,
          states: noStates(),
          healthyOn: 0,
          reportingReplicas: 0,
          outstanding: 0,
          requests: 0,
          failures: 0,
          lastError: null,
        };
        row.states[u.state] += 1;
        row.healthyOn += u.state === 'healthy' ? 1 : 0;
        row.reportingReplicas++;
        row.outstanding += u.outstanding;
        row.requests += u.requests;
        row.failures += u.failures;
        row.lastError = u.lastError ?? row.lastError;
        byName.set(u.name, row);
      }
    }
    const upstreams = [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
    const down = upstreams.filter((u) => u.healthyOn === 0).map((u) => u.name);
    const note =
      down.length === 0
        ? `All ${upstreams.length} upstream(s) healthy on at least one replica.`
        : `Not healthy on any replica: ${down.join(', ')}.`;
    return { headline: note, data: { status: 'ok' as const, note, replicas: reports.length, upstreams } };
  },
});
