import type { Sql } from './db.js';

export interface AllowEntry {
  kind: 'key' | 'account' | 'cidr';
  value: string;
}

/** The guard_allowlist rows that have not expired (managed by the admin route, CLI and MCP: issue 18). */
export async function loadAllowlist(sql: Sql): Promise<AllowEntry[]> {
  return sql<AllowEntry[]>`SELECT kind, value FROM guard_allowlist WHERE expires_at IS NULL OR expires_at > now()`;
}
