import { describe, expect, it } from 'vitest';
import { formatIncidentId, incidentIdSchema, incidentSchema, INCIDENT_SCHEMA_VERSION, type Incident } from './incident.js';
import { guardLeaseTiming } from './guard.js';
import { redisKeys } from './redis-keys.js';

const incident = (over: Partial<Incident> = {}): Incident => ({
  v: INCIDENT_SCHEMA_VERSION,
  id: formatIncidentId(1_765_000_000_000, 'deadbeef'),
  at: 1_765_000_000_000,
  updatedAt: 1_765_000_000_000,
  source: 'guard',
  keyId: 'k1',
  keyPrefix: 'fgk_abc',
  ownerId: null,
  ownerEmail: 'a@example.com',
  tier: 'free',
  clientIp: null,
  detector: 'context_flooding',
  mode: 'enforce',
  evidence: { promptTokens: 300_000 },
  thresholds: { promptTokens: 225_000 },
  alsoTripped: ['token_overconsumption'],
  action: 'penalty',
  level: 'penalty-1',
  expiresAt: 1_765_000_900_000,
  wouldAction: null,
  wouldLevel: null,
  suppressedBy: null,
  cappedFrom: null,
  priorOffences: 0,
  status: 'open',
  endedAt: null,
  polls: 1,
  lastSeenAt: 1_765_000_000_000,
  actor: null,
  reason: null,
  summary: null,
  summarySource: null,
  ...over,
});

describe('guard contracts', () => {
  it('incident ids sort by time and carry nothing else', () => {
    const a = formatIncidentId(1_765_000_000_000, '00000000');
    const b = formatIncidentId(1_765_000_000_001, '00000000');
    expect(incidentIdSchema.safeParse(a).success).toBe(true);
    expect(a < b).toBe(true);
    expect(incidentIdSchema.safeParse('inc_x_notHex!').success).toBe(false);
  });
  it('an incident round-trips; another version or junk evidence does not parse', () => {
    expect(incidentSchema.parse(JSON.parse(JSON.stringify(incident())))).toEqual(incident());
    expect(incidentSchema.safeParse({ ...incident(), v: 0 }).success).toBe(false);
    expect(incidentSchema.safeParse({ ...incident(), evidence: { prompt: 'some user text' } }).success).toBe(false);
  });
  it('the lease lets a standby take over within two poll intervals', () => {
    for (const poll of [1000, 2000, 5000]) {
      const { ttlMs, renewEveryMs } = guardLeaseTiming(poll);
      // Worst case: the leader renewed just before dying; a standby retries every renewEveryMs.
      expect(ttlMs + renewEveryMs).toBeLessThanOrEqual(2 * poll);
      expect(renewEveryMs * 2).toBeLessThan(ttlMs);
    }
  });
  it('incident stream, records and summaries share one cluster slot', () => {
    const tags = [redisKeys.incidents(), redisKeys.incidentRecords(), redisKeys.incidentSummaries()].map((k) => k.match(/\{[^}]+\}/)?.[0]);
    expect(new Set(tags)).toEqual(new Set(['{incidents}']));
    expect(redisKeys.episode('ip:10.0.0.1', 'credential_stuffing')).toContain('{ip:10.0.0.1}');
  });
});
