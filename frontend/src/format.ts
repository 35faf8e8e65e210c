/** Dates, durations and numbers for people, in the browser's locale. */

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const integer = new Intl.NumberFormat();

export const formatNumber = (n: number): string => integer.format(n);
export const formatTime = (ms: number): string => time.format(ms);

export function formatDate(value: string | number | null): string {
  if (value === null) return 'never';
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isNaN(ms) ? '—' : dateTime.format(ms);
}

/** "in 14 minutes", "3 hours ago". */
export function formatRelative(ms: number, nowMs: number = Date.now()): string {
  const seconds = Math.round((ms - nowMs) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(seconds, 'second');
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86_400) return relative.format(Math.round(seconds / 3600), 'hour');
  return relative.format(Math.round(seconds / 86_400), 'day');
}

/** Detector ids as operators read them. */
export const DETECTOR_LABELS: Record<string, string> = {
  context_flooding: 'Context flooding',
  token_overconsumption: 'Token over-consumption',
  credential_stuffing: 'Credential stuffing',
  rate_spike: 'Request-rate spike',
  hammering_429: 'Hammering through 429s',
  token_ratio_spike: 'Output/input ratio spike',
  repeated_prompt: 'Repeated prompt',
  model_enumeration: 'Model enumeration',
  leaked_key: 'Leaked key (many IPs)',
};

/** `distinctModels` → "distinct models". */
export const humanise = (name: string): string =>
  name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([a-z])(\d)/g, '$1 $2')
    .replace(/_/g, ' ')
    .toLowerCase();
