import { createHash, timingSafeEqual } from 'node:crypto';
import { MCP_TOKEN_NAME, type McpRole, type McpTokenEntry } from '../config/mcp-env.js';
import type { ControlPlaneConfig } from '../config/schema.js';

/** Who is calling: the token's name (recorded as the actor of every action) and its role. */
export interface McpIdentity {
  name: string;
  role: McpRole;
  via: 'http' | 'stdio';
}

export type Authentication =
  | { ok: true; identity: McpIdentity }
  /** missing: no bearer token; invalid: none matches; unconfigured: no token exists to match. */
  | { ok: false; reason: 'missing' | 'invalid' | 'unconfigured' };

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * The bearer tokens of /mcp: MCP_TOKENS and MCP_TOKEN; when neither is set, the admin token
 * (ADMIN_TOKEN or the data plane's generated one) acts as an operator named `admin`, so `npm
 * start` works without more configuration (it already grants penalty writes on the admin API).
 * The presented token is hashed and compared with every configured one in constant time, and
 * the loop never stops early, so neither the match nor which entry matched shows in the timing.
 */
export function createTokenTable(opts: { tokens: readonly McpTokenEntry[]; adminToken: () => string | null }): {
  authenticate(authorization: string | undefined): Authentication;
} {
  const configured = opts.tokens.map((t) => ({ name: t.name, role: t.role, hash: digest(t.token) }));
  return {
    authenticate(authorization) {
      const admin = configured.length === 0 ? opts.adminToken() : null;
      const table = admin ? [{ name: 'admin', role: 'operator' as const, hash: digest(admin) }] : configured;
      if (table.length === 0) return { ok: false, reason: 'unconfigured' };
      // RFC 6750 §2.1: `Bearer` (any case) then the token.
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
      if (!m?.[1]) return { ok: false, reason: 'missing' };
      const presented = digest(m[1]);
      let found: (typeof table)[number] | null = null;
      for (const entry of table) if (timingSafeEqual(presented, entry.hash) && !found) found = entry;
      return found ? { ok: true, identity: { name: found.name, role: found.role, via: 'http' } } : { ok: false, reason: 'invalid' };
    },
  };
}

/** MCP_TOKENS, then MCP_TOKEN as an operator named `mcp-token` (refused at boot if it repeats one). */
export function mcpTokenEntries(config: Pick<ControlPlaneConfig, 'MCP_TOKENS' | 'MCP_TOKEN'>): McpTokenEntry[] {
  return config.MCP_TOKEN
    ? [...config.MCP_TOKENS, { name: MCP_TOKEN_NAME, role: 'operator', token: config.MCP_TOKEN }]
    : [...config.MCP_TOKENS];
}
