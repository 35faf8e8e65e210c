import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { McpContext } from './context.js';
import type { McpIdentity } from './identity.js';
import { registerPrompts } from './prompts.js';
import { registerResources } from './resources.js';
import { registerTools, type AnyToolSpec } from './tool.js';
import { getIncident, listIncidents, listShadowDecisions, summariseIncident } from './tools/incidents.js';
import { explainKey, getKeyProfile } from './tools/keys.js';
import { getGatewayMetrics, getUpstreamHealth, listTopConsumers } from './tools/observe.js';
import { listPenaltyBox, pardonKey, throttleKey } from './tools/penalties.js';
import { addAllowlistEntry, getDetectorModes, listAllowlist, removeAllowlistEntry, setDetectorMode } from './tools/rails.js';

/** Reported to clients in initialize (serverInfo.version). */
export const MCP_SERVER_VERSION = '0.1.0';

export const TOOLS: readonly AnyToolSpec[] = [
  getGatewayMetrics,
  listTopConsumers,
  listIncidents,
  getIncident,
  summariseIncident,
  listShadowDecisions,
  listPenaltyBox,
  getKeyProfile,
  explainKey,
  getUpstreamHealth,
  listAllowlist,
  getDetectorModes,
  throttleKey,
  pardonKey,
  addAllowlistEntry,
  removeAllowlistEntry,
  setDetectorMode,
];

const INSTRUCTIONS =
  'Fluxgate control plane: the guard that watches an inference gateway, its incidents and penalty box. ' +
  'Address API keys by id or display prefix (fgk_ and 8 characters), never by secret. ' +
  'Lists are paged (limit at most 100, then nextCursor). Acting tools need a reason, are recorded as operator incidents under your token name, ' +
  'and take dryRun: true to show what would change first.';

/**
 * One MCP server for one caller: the tools its role may use (a reader's list has no acting tool
 * at all), the resources and the triage prompt. Cheap to build, so HTTP builds one per request.
 */
export function createFluxgateMcpServer(ctx: McpContext, identity: McpIdentity, version: string): McpServer {
  const server = new McpServer({ name: 'fluxgate', title: 'Fluxgate control plane', version }, { instructions: INSTRUCTIONS });
  registerTools(server, TOOLS, { ctx, identity });
  registerResources(server, ctx);
  registerPrompts(server, ctx, identity);
  return server;
}
