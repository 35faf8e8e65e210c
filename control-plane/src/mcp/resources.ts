import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { INCIDENT_ID_RE } from '@fluxgate/contracts';
import type { McpContext } from './context.js';
import { queryIncidents } from './incident-query.js';
import { gatewayMetrics } from './tools/observe.js';

const json = (uri: string, value: unknown) => ({ contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }] });

/** fluxgate://incidents/{id} (the newest listed) and fluxgate://metrics/current (the last 5 minutes). */
export function registerResources(server: McpServer, ctx: McpContext): void {
  server.registerResource(
    'incident',
    new ResourceTemplate('fluxgate://incidents/{id}', {
      list: async () => {
        const { items } = await queryIncidents(ctx.redis, {}, 50);
        return {
          resources: items.map((i) => ({
            uri: `fluxgate://incidents/${i.id}`,
            name: `${i.id} ${i.source === 'operator' ? `operator ${i.action}` : i.detector} ${i.keyPrefix ?? i.clientIp ?? ''}`.trim(),
            mimeType: 'application/json',
          })),
        };
      },
    }),
    { title: 'Incident', description: 'One incident record (evidence, action, status, summary) as JSON.', mimeType: 'application/json' },
    async (uri, vars) => {
      const id = String(vars.id ?? '');
      const incident = INCIDENT_ID_RE.test(id) ? await ctx.store.get(id) : null;
      // An unknown id is a clean answer, not a protocol error: the JSON says so.
      return json(uri.href, incident ?? { found: false, message: `no incident ${id.slice(0, 40)} in the ring buffer` });
    },
  );
  server.registerResource(
    'metrics-current',
    'fluxgate://metrics/current',
    {
      title: 'Gateway metrics now',
      description: 'The gateway over the last 5 minutes: traffic, 429s, tokens, replicas, penalties, incidents.',
      mimeType: 'application/json',
    },
    async (uri) => json(uri.href, await gatewayMetrics(ctx, '5m')),
  );
}
