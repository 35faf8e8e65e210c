import { describe, expect, it } from 'vitest';
import { runReplay } from './replay/harness.js';

/**
 * Scenario traffic against the real data plane with the real control plane watching. Asserts
 * what must hold on any machine — every abuse scenario detected, no honest user penalised, one
 * incident per episode — and prints the timings (`npm run replay` shows the table).
 */
describe('replay', () => {
  it('detects every abuse scenario, penalises no honest heavy user, one incident each', async () => {
    const report = await runReplay({ seconds: 20 });
    if (process.env.REPLAY_PRINT) {
      process.stdout.write(`\npoll interval ${report.pollIntervalSeconds} s, counter flush ${report.counterFlushMs} ms\n`);
      // guard s: from the scenario's first request to the guard's first poll that saw it tripping.
      const incidentAt = (r: (typeof report.results)[number]): string => {
        const i = report.incidents.find((x) => (r.keyId ? x.keyId === r.keyId : x.clientIp !== null));
        return i ? ((i.at - r.startedAt) / 1000).toFixed(2) : '-';
      };
      console.table(
        report.results.map((r) => ({
          scenario: r.name,
          kind: r.kind,
          requests: r.requests,
          detected: r.detectedAfterSeconds !== null,
          'guard s': incidentAt(r),
          'penalty tier s': r.detectedAfterSeconds?.toFixed(2) ?? '-',
          tiers: r.tiers.join(' '),
        })),
      );
      console.table(
        report.incidents.map((i) => ({ detector: i.detector, action: i.action, level: i.level, polls: i.polls, summary: i.summarySource })),
      );
    }
    const missed = report.results.filter((r) => r.kind === 'abuse' && r.detectedAfterSeconds === null).map((r) => r.name);
    expect(missed).toEqual([]);
    // Each abuse is named by the detector meant for it.
    for (const r of report.results.filter((x) => x.kind === 'abuse')) {
      const incident = report.incidents.find((i) => (r.keyId ? i.keyId === r.keyId : i.clientIp !== null));
      expect({ scenario: r.name, detector: incident?.detector }).toEqual({ scenario: r.name, detector: r.expectedDetector });
    }
    expect(report.benignPenalised).toBe(0);
    // One incident per abusive key or IP: never one per poll.
    const subjects = report.incidents.map((i) => i.keyId ?? i.clientIp);
    expect(new Set(subjects).size).toBe(subjects.length);
    expect(report.incidents.length).toBe(report.results.filter((r) => r.kind === 'abuse').length);
  }, 120_000);
});
