import { operatorActionSummary, type DetectorId, type Incident } from '@fluxgate/contracts';
import { evidenceLines } from './prompt.js';

const DESCRIPTIONS: Record<DetectorId, string> = {
  context_flooding: 'sent many very large prompts',
  token_overconsumption: 'asked for far more tokens than its tier allows',
  credential_stuffing: 'failed authentication many times (credential stuffing or key guessing)',
  rate_spike: 'sent requests far above its own usual rate',
  hammering_429: 'kept sending requests through rate-limit refusals (429)',
  token_ratio_spike: 'pulled very large completions from tiny prompts',
  repeated_prompt: 'sent the same prompt over and over',
  model_enumeration: 'asked for many different models',
  leaked_key: 'was used from many different client IP addresses',
};

/**
 * The deterministic summary used when the model is down, slow or answers garbage (stored with
 * source `template`): the same facts as the prompt, in fixed sentences. An operator's action is
 * summarised as every operator surface summarises it (contracts operatorActionSummary).
 */
export function templateSummary(i: Incident): string {
  if (i.source === 'operator' || i.detector === null) return operatorActionSummary(i);
  const who = i.keyId ? `API key ${i.keyPrefix ?? i.keyId} (tier ${i.tier ?? 'unknown'})` : `Client IP ${i.clientIp ?? 'unknown'}`;
  const what =
    i.suppressedBy !== null
      ? `Not enforced (${i.suppressedBy.replace('_', ' ')}); would have applied ${i.wouldAction ?? 'no action'}${i.wouldLevel ? ` ${i.wouldLevel}` : ''}.`
      : i.action === 'none'
        ? 'No new action: already limited.'
        : `Action: ${i.action}${i.level ? ` ${i.level}` : ''}${i.expiresAt ? ` until ${new Date(i.expiresAt).toISOString()}` : ''}.`;
  const evidence = evidenceLines(i)
    .map((l) => l.slice(2))
    .join('; ');
  return `${who} ${DESCRIPTIONS[i.detector]} (${i.detector}, ${i.mode} mode). ${what} Evidence: ${evidence}.`;
}

/**
 * Whether a model's answer is usable: prose of sensible length. Empty answers, runaway ones,
 * code blocks, JSON, markup and control characters are garbage.
 */
export function usableSummary(text: string): string | null {
  const t = text.trim();
  if (t.length < 20 || t.length > 2000) return null;
  // Control characters (other than tab, LF, CR) mean the model answered binary junk.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(t)) return null;
  if (/^[[{<]|```/.test(t)) return null;
  const words = t.split(/\s+/).filter((w) => /[A-Za-z]{2,}/.test(w));
  if (words.length < 5) return null;
  const letters = (t.match(/[A-Za-z]/g) ?? []).length;
  if (letters / t.length < 0.5) return null;
  return t;
}
