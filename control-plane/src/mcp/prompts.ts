import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { INCIDENT_ID_RE } from '@fluxgate/contracts';
import { z } from 'zod';
import type { McpContext } from './context.js';
import type { McpIdentity } from './identity.js';

/** triage_incident: the steps an operator would take, with the incident itself attached. */
export function registerPrompts(server: McpServer, ctx: McpContext, identity: McpIdentity): void {
  server.registerPrompt(
    'triage_incident',
    {
      title: 'Triage an incident',
      description: 'Decide whether an incident is real abuse or a false positive, and what to do about it.',
      argsSchema: {
        incidentId: z.string().regex(INCIDENT_ID_RE, 'expected an incident id like inc_<time>_<8 hex>').describe('The incident to triage.'),
      },
    },
    async ({ incidentId }) => {
      const incident = await ctx.store.get(incidentId);
      const act =
        identity.role === 'operator'
          ? '5. Propose one action and its reason; use dryRun: true first (throttle_key, pardon_key, add_allowlist_entry or set_detector_mode), and act only once I agree.'
          : '5. Propose one action and its reason (your token is a reader: an operator has to carry it out).';
      const steps = [
        `Triage Fluxgate incident ${incidentId}.`,
        '1. Read the incident: detector, mode, the evidence against its thresholds, the action and its expiry.',
        '2. Call explain_key and get_key_profile for its key (by id or display prefix, never a secret): own tier, usage, earlier incidents, allowlist and grace.',
        '3. Compare with list_incidents for the same key and detector, and list_shadow_decisions if the detector is in shadow mode.',
        '4. Say whether this looks like abuse or a false positive (a legitimate burst, a batch job, a shared NAT), and how sure you are.',
        act,
      ].join('\n');
      const attached = incident
        ? {
            type: 'resource' as const,
            resource: { uri: `fluxgate://incidents/${incidentId}`, mimeType: 'application/json', text: JSON.stringify(incident, null, 2) },
          }
        : {
            type: 'text' as const,
            text: `Incident ${incidentId} is not in the ring buffer (trimmed, or a wrong id): check list_incidents first.`,
          };
      return {
        description: `Triage of ${incidentId}`,
        messages: [
          { role: 'user', content: { type: 'text', text: steps } },
          { role: 'user', content: attached },
        ],
      };
    },
  );
}
