import { describe, expect, it } from 'vitest';
import { createTokenTable } from './identity.js';

const op = 'Op7Xb7QpL2vR9sT4wZ8yN3mC6fH1jD5gA0eU';
const rd = 'Rd7Xb7QpL2vR9sT4wZ8yN3mC6fH1jD5gA0eU';

describe('MCP bearer tokens', () => {
  const table = createTokenTable({
    tokens: [
      { name: 'alice', role: 'operator', token: op },
      { name: 'rita', role: 'reader', token: rd },
    ],
    adminToken: () => 'admin-token-that-must-not-count-0001',
  });
  it('maps each token to its name and role', () => {
    expect(table.authenticate(`Bearer ${op}`)).toEqual({ ok: true, identity: { name: 'alice', role: 'operator', via: 'http' } });
    expect(table.authenticate(`bearer ${rd}`)).toEqual({ ok: true, identity: { name: 'rita', role: 'reader', via: 'http' } });
  });
  it('missing or malformed headers are "missing"; anything else that does not match is "invalid"', () => {
    for (const h of [undefined, '', 'Basic abc', 'Bearer', `Token ${op}`])
      expect(table.authenticate(h)).toEqual({ ok: false, reason: 'missing' });
    for (const h of [`Bearer ${op}x`, `Bearer ${op.slice(1)}`, 'Bearer admin-token-that-must-not-count-0001'])
      expect(table.authenticate(h)).toEqual({ ok: false, reason: 'invalid' });
  });
  it('without MCP tokens the admin token is an operator named admin; without either, nothing is configured', () => {
    const admin = createTokenTable({ tokens: [], adminToken: () => 'the-admin-token-0123456789abcdef' });
    expect(admin.authenticate('Bearer the-admin-token-0123456789abcdef')).toEqual({
      ok: true,
      identity: { name: 'admin', role: 'operator', via: 'http' },
    });
    expect(createTokenTable({ tokens: [], adminToken: () => null }).authenticate(`Bearer ${op}`)).toEqual({
      ok: false,
      reason: 'unconfigured',
    });
  });
});
