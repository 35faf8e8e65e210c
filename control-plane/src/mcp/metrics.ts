import { Counter, type Registry } from 'prom-client';

/**
 * MCP on the control plane's /metrics. Labels are bounded: tool names are a fixed set, outcomes
 * and refusal reasons a handful; never a token name or a key.
 */
export const TOOL_OUTCOMES = ['ok', 'not_found', 'bad_arguments', 'failed'] as const;
export type ToolOutcome = (typeof TOOL_OUTCOMES)[number];
export const REFUSALS = ['host', 'origin', 'missing_token', 'invalid_token', 'unconfigured', 'method'] as const;
export type Refusal = (typeof REFUSALS)[number];

export interface McpMetrics {
  toolCall(tool: string, outcome: ToolOutcome): void;
  refused(reason: Refusal): void;
}

export function createMcpMetrics(registry: Registry): McpMetrics {
  const calls = new Counter({
    name: 'fluxgate_mcp_tool_calls_total',
    help: 'MCP tool calls by tool and outcome',
    labelNames: ['tool', 'outcome'],
    registers: [registry],
  });
  const refused = new Counter({
    name: 'fluxgate_mcp_http_refused_total',
    help: 'Requests to /mcp refused before any tool ran, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  for (const r of REFUSALS) refused.inc({ reason: r }, 0);
  return {
    toolCall: (tool, outcome) => calls.inc({ tool, outcome }),
    refused: (reason) => refused.inc({ reason }),
  };
}
