import { weakSecretMessage, weakSecretReason } from '@fluxgate/contracts';
import { z } from 'zod';

/**
 * The MCP server's variables (README "MCP"), parsed by config/schema.ts. Error messages name
 * the entry's position and the problem, never a token.
 */
export const MCP_ROLES = ['reader', 'operator'] as const;
export type McpRole = (typeof MCP_ROLES)[number];

export interface McpTokenEntry {
  /** Who acted, as recorded in operator incidents and the audit log. */
  name: string;
  role: McpRole;
  token: string;
}

/** Shortest accepted token: `openssl rand -hex 16` gives 32 characters, `-base64 32` 44. */
export const MCP_TOKEN_MIN_LENGTH = 32;
export const MCP_TOKEN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
/** The identity MCP_TOKEN acts as. */
export const MCP_TOKEN_NAME = 'mcp-token';

/** Why a token is refused, or null: long enough, no blanks or commas, not obviously weak. */
export function tokenProblem(token: string): string | null {
  if (token.length < MCP_TOKEN_MIN_LENGTH) return `the token must be at least ${MCP_TOKEN_MIN_LENGTH} characters`;
  if (/[\s,]/.test(token)) return 'the token may not contain blanks or commas';
  const weak = weakSecretReason(token);
  return weak === null ? null : `the token is ${weakSecretMessage(weak)}`;
}

/**
 * MCP_TOKENS: comma-separated `name:token` (an operator) or `name:role:token` with role
 * `reader` or `operator`. Names and tokens must be unique.
 */
export function parseMcpTokens(text: string): { entries: McpTokenEntry[]; problems: string[] } {
  const entries: McpTokenEntry[] = [];
  const problems: string[] = [];
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  parts.forEach((part, n) => {
    const where = `entry ${n + 1}`;
    const fields = part.split(':');
    const name = fields[0] ?? '';
    const hasRole = fields.length >= 3 && (MCP_ROLES as readonly string[]).includes(fields[1]!);
    const role: McpRole = hasRole ? (fields[1] as McpRole) : 'operator';
    const token = fields.slice(hasRole ? 2 : 1).join(':');
    if (fields.length < 2 || token === '') return void problems.push(`${where}: expected name:token or name:reader|operator:token`);
    if (!MCP_TOKEN_NAME_RE.test(name))
      return void problems.push(`${where}: the name must be 1-64 letters, digits or _ . @ - (starting with a letter or digit)`);
    const bad = tokenProblem(token);
    if (bad) return void problems.push(`${where} (${name}): ${bad}`);
    if (entries.some((e) => e.name === name)) return void problems.push(`${where}: the name ${name} is used twice`);
    if (entries.some((e) => e.token === token)) return void problems.push(`${where} (${name}): the same token is given to two names`);
    entries.push({ name, role, token });
  });
  return { entries, problems };
}

export const mcpTokensSchema = z
  .string()
  .default('')
  .transform((text, ctx) => {
    const { entries, problems } = parseMcpTokens(text);
    for (const message of problems) ctx.addIssue({ code: 'custom', message });
    return problems.length > 0 ? z.NEVER : entries;
  });

export const mcpTokenSchema = z
  .string()
  .optional()
  .transform((v, ctx) => {
    const t = v?.trim();
    if (!t) return undefined;
    const bad = tokenProblem(t);
    if (bad) {
      ctx.addIssue({ code: 'custom', message: bad });
      return z.NEVER;
    }
    return t;
  });

/** Host names (no port) a request's Host header may carry besides the loopback names. */
export const hostListSchema = z
  .string()
  .default('')
  .transform((text, ctx) => {
    const out: string[] = [];
    for (const raw of text
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean)) {
      if (!/^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9.-]{0,252}))$/.test(raw)) {
        ctx.addIssue({ code: 'custom', message: `expected host names without a port (e.g. mcp.example.com or [::1]); got "${raw}"` });
        return z.NEVER;
      }
      out.push(raw);
    }
    return out;
  });

/** Browser origins (scheme://host[:port]) allowed besides the loopback ones. */
export const originListSchema = z
  .string()
  .default('')
  .transform((text, ctx) => {
    const out: string[] = [];
    for (const raw of text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      let origin: string | null = null;
      try {
        const u = new URL(raw);
        const bare = u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password && !raw.endsWith('#');
        if ((u.protocol === 'http:' || u.protocol === 'https:') && bare) origin = u.origin;
      } catch {
        origin = null;
      }
      if (!origin) {
        ctx.addIssue({
          code: 'custom',
          message: `expected origins like https://console.example.com (scheme, host, optional port, no path); got "${raw}"`,
        });
        return z.NEVER;
      }
      out.push(origin);
    }
    return out;
  });

/** MCP_TOKEN acts as MCP_TOKEN_NAME beside MCP_TOKENS: neither its name nor its value may repeat one there. */
export function mcpTokenConflict(c: { MCP_TOKEN?: string | undefined; MCP_TOKENS: readonly McpTokenEntry[] }): string | null {
  if (!c.MCP_TOKEN) return null;
  if (c.MCP_TOKENS.some((e) => e.name === MCP_TOKEN_NAME))
    return `invalid MCP_TOKENS: the name ${MCP_TOKEN_NAME} is MCP_TOKEN's; choose another`;
  if (c.MCP_TOKENS.some((e) => e.token === c.MCP_TOKEN)) return 'invalid MCP_TOKEN: the same token is also in MCP_TOKENS';
  return null;
}
