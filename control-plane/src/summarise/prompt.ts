import type { Incident } from '@fluxgate/contracts';

/**
 * The summary prompt, built only from the incident's evidence: detector, mode, action, level,
 * expiry, the numbers and the thresholds they crossed, the key's display prefix and tier. No
 * prompt text of users exists in an incident, and the owner's email and client IPs are left out
 * too: the model needs neither to explain the numbers.
 */
export const SYSTEM_PROMPT =
  'You write short incident summaries for the operators of an AI inference gateway. ' +
  'Use only the facts given. Two to four plain sentences, no lists, no markdown, no speculation about identities. ' +
  'Say what was detected, which numbers crossed which thresholds, and what the gateway did.';

const fmt = (n: number): string => (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toFixed(2));

export function evidenceLines(i: Incident): string[] {
  return Object.keys(i.evidence)
    .sort()
    .map((name) => {
      const t = i.thresholds[name];
      return `- ${name}: ${fmt(i.evidence[name]!)}${t === undefined ? '' : ` (threshold ${fmt(t)})`}`;
    });
}

export function buildPrompt(i: Incident): string {
  const subject = i.keyId ? `API key ${i.keyPrefix ?? '(prefix unknown)'} on tier ${i.tier ?? 'unknown'}` : 'a client IP address';
  const action =
    i.suppressedBy !== null
      ? `nothing was enforced (${i.suppressedBy.replace('_', ' ')}); it would have applied ${i.wouldAction ?? 'no action'}${i.wouldLevel ? ` at ${i.wouldLevel}` : ''}`
      : i.action === 'none'
        ? 'no new action (already limited)'
        : `${i.action}${i.level ? ` at ${i.level}` : ''}${i.expiresAt ? ` until ${new Date(i.expiresAt).toISOString()}` : ''}`;
  return [
    `Detector: ${i.detector ?? 'none'} (${i.mode} mode)`,
    `Subject: ${subject}`,
    `Seen from ${new Date(i.at).toISOString()} to ${new Date(i.lastSeenAt).toISOString()} over ${i.polls} guard polls`,
    `Earlier offences of this key in memory: ${i.priorOffences}`,
    ...(i.alsoTripped.length > 0 ? [`Other detectors that also tripped: ${i.alsoTripped.join(', ')}`] : []),
    `Action: ${action}`,
    'Evidence (value and threshold):',
    ...evidenceLines(i),
  ].join('\n');
}
