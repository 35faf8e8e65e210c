import { describe, expect, it } from 'vitest';
import { allowlistInputSchema, parseAllowlistSpec } from './allowlist.js';
import { formatIncidentId, incidentSchema } from './incident.js';
import { operatorActionIncident, operatorActors } from './operator-action.js';
import { checkPenaltyCap, DEFAULT_MAX_OPERATOR_PENALTY_SECONDS, operatorPenaltyCapSchema } from './operator-rails.js';
import { buildPenaltyRecord } from './penalty-protocol.js';
import { penaltyRecordSchema } from './tiers.js';

describe('operator rails', () => {
  it('MCP_MAX_PENALTY is whole seconds (as MCP reads it), 24 h by default; junk is refused', () => {
    expect(operatorPenaltyCapSchema.parse(undefined)).toBe(DEFAULT_MAX_OPERATOR_PENALTY_SECONDS);
    expect(operatorPenaltyCapSchema.parse('')).toBe(86_400);
    expect(operatorPenaltyCapSchema.parse(' 3600 ')).toBe(3600);
    for (const bad of ['0', '-5', '24h', 'soon', '1.5', '1e5']) expect(operatorPenaltyCapSchema.safeParse(bad).success, bad).toBe(false);
  });

  it('a penalty beyond the cap needs force, and then says it was forced', () => {
    expect(checkPenaltyCap(86_400, 86_400, false)).toEqual({ ok: true, forced: false });
    expect(checkPenaltyCap(86_401, 86_400, true)).toEqual({ ok: true, forced: true });
    const refused = checkPenaltyCap(86_401, 86_400, false);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.message).toMatch(/MCP_MAX_PENALTY \(86400 s\).*force/);
    const rec = buildPenaltyRecord({
      keyId: 'k',
      level: 'penalty-1',
      setBy: 'operator',
      durationSeconds: 90_000,
      actor: 'admin-token',
      forced: true,
      now: 1_000,
    });
    expect(penaltyRecordSchema.parse(JSON.parse(JSON.stringify(rec)))).toMatchObject({ actor: 'admin-token', forced: true });
    // Records written before these fields existed still parse.
    const { actor: _a, forced: _f, ...old } = rec;
    expect(penaltyRecordSchema.safeParse(old).success).toBe(true);
  });

  it('allowlist entries are validated per kind and normalised', () => {
    const ok = (kind: string, value: string) => allowlistInputSchema.safeParse({ kind, value });
    expect(ok('key', '9D3B1F1E-7C1A-4C5B-9E1A-2B3C4D5E6F70').data?.value).toBe('9d3b1f1e-7c1a-4c5b-9e1a-2b3c4d5e6f70');
    expect(ok('account', 'Ops@Example.com').data?.value).toBe('ops@example.com');
    expect(ok('cidr', '10.0.0.0/8').success).toBe(true);
    expect(ok('cidr', '2001:db8::/32').success).toBe(true);
    expect(ok('cidr', '203.0.113.7').success).toBe(true);
    for (const [kind, value] of [
      ['key', 'fgk_notanid'],
      ['account', 'nobody'],
      ['cidr', '10.0.0.0/33'],
      ['cidr', 'example.com'],
      ['ip', '10.0.0.1'],
    ] as const) {
      expect(ok(kind, value).success, `${kind}:${value}`).toBe(false);
    }
    expect(allowlistInputSchema.safeParse({ kind: 'key', value: '9d3b1f1e-7c1a-4c5b-9e1a-2b3c4d5e6f70', extra: 1 }).success).toBe(false);
    expect(parseAllowlistSpec('cidr:10.0.0.0/8')).toEqual({ kind: 'cidr', value: '10.0.0.0/8' });
    expect(parseAllowlistSpec('10.0.0.0/8')).toBeNull();
  });

  it("an operator's pardon is a valid, closed incident that names the pardoned one, with its summary", () => {
    const pardoned = formatIncidentId(1_765_000_000_000, 'aaaaaaaa');
    const i = operatorActionIncident({
      action: 'pardon',
      at: 1_765_000_100_000,
      actor: operatorActors.cli('ops'),
      reason: 'false positive',
      key: { id: 'k1', prefix: 'fgk_abc', ownerId: null, ownerEmail: 'a@example.com', tier: 'free' },
      detector: 'context_flooding',
      level: 'penalty-2',
      relatesTo: pardoned,
    });
    expect(incidentSchema.parse(JSON.parse(JSON.stringify(i)))).toMatchObject({
      source: 'operator',
      action: 'pardon',
      status: 'closed',
      endedAt: 1_765_000_100_000,
      actor: 'cli:ops',
      relatesTo: pardoned,
      level: 'penalty-2',
      detector: 'context_flooding',
      summarySource: 'template',
    });
    expect(i.summary).toBe(
      `Operator pardoned API key fgk_abc, lifting penalty-2 (incident ${pardoned}). By cli:ops; reason: false positive.`,
    );
  });

  it('an action about no detector has a null detector; a guard incident without one is refused', () => {
    const add = operatorActionIncident({
      action: 'allowlist_add',
      at: 1_765_000_100_000,
      actor: operatorActors.portal('ops@example.com'),
      reason: 'our load test',
      what: 'Operator allowlisted cidr:10.0.0.0/8.',
    });
    expect(add).toMatchObject({ detector: null, keyId: null, status: 'closed', action: 'allowlist_add', actor: 'portal:ops@example.com' });
    expect(add.summary).toBe('Operator allowlisted cidr:10.0.0.0/8. By portal:ops@example.com; reason: our load test.');
    const guard = incidentSchema.safeParse({ ...add, source: 'guard' });
    expect(guard.success).toBe(false);
    expect(guard.error?.issues[0]).toMatchObject({ path: ['detector'], message: "the guard's incidents name their detector" });
    expect(incidentSchema.safeParse({ ...add, source: 'guard', detector: 'rate_spike' }).success).toBe(true);
    expect(incidentSchema.safeParse({ ...add, action: 'no_such_action' }).success).toBe(false);
  });

  it('a mode change records the new mode and names the detector', () => {
    const i = operatorActionIncident({
      action: 'mode_change',
      at: 1_765_000_100_000,
      actor: 'admin-token',
      reason: null,
      detector: 'rate_spike',
      mode: 'shadow',
    });
    expect(i).toMatchObject({ detector: 'rate_spike', mode: 'shadow', keyId: null });
    expect(i.summary).toBe('Operator changed the mode of detector rate_spike to shadow. By admin-token; reason: none given.');
    expect(i.id).toMatch(/^inc_[0-9a-z]+_[0-9a-f]{8}$/);
  });
});
