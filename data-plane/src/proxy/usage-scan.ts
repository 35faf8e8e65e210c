/**
 * Byte-level helpers for usage tracking, cheap enough for the hot path: they search with native
 * `indexOf` and only JSON.parse the rare event that carries usage.
 *
 * Key needles are matched with their quotes: inside a JSON string a quote is escaped (`\"`), so
 * `"usage":` can only ever be a member name, never model output.
 */

/** Members whose string values are generated text (OpenAI chat/completions/tools, Ollama). */
const TEXT_MEMBERS = 'content|text|response|reasoning_content|thinking|arguments|refusal';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SPACE = 0x20;

export const USAGE_KEY = Buffer.from('"usage":');
export const EVAL_COUNT_KEY = Buffer.from('"eval_count":');

/** Which member marks an event worth parsing: an OpenAI usage object, or Ollama's final counts. */
export type Needle = 'usage' | 'eval_count';

/**
 * One regex pass over a chunk finds both the text members and the needles. It runs on a latin1
 * view, where one character is one byte, so indexes and lengths are byte offsets. (Buffer#indexOf
 * with a multi-byte needle costs about 1 ns per byte per needle: one pass per member would cost
 * several times more.)
 */
const SCANNERS: Record<Needle, RegExp> = {
  usage: new RegExp(`"(?:(?:${TEXT_MEMBERS})":[ \t]*"|(usage)":[ \t]*{)`, 'g'),
  eval_count: new RegExp(`"(?:(?:${TEXT_MEMBERS})":[ \t]*"|(eval_count)":)`, 'g'),
};

function skipSpaces(buf: Buffer, j: number, end: number): number {
  while (j < end && (buf[j] === SPACE || buf[j] === 0x09)) j++;
  return j;
}

/**
 * Scans a chunk: returns the bytes of text-member string values (escapes counted as written) and
 * appends to `needles` the offset of each needle member. A member split across chunks is missed
 * or cut short; text only feeds estimates, and events that straddle chunks are searched whole.
 */
export function scanChunk(buf: Buffer, needle: Needle, needles: number[]): number {
  const s = buf.toString('latin1');
  const re = SCANNERS[needle];
  re.lastIndex = 0;
  let total = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    if (m[1] !== undefined) {
      needles.push(m.index);
      continue;
    }
    let j = re.lastIndex;
    const start = j;
    while (j < s.length) {
      const c = s.charCodeAt(j);
      if (c === BACKSLASH) j += 2;
      else if (c === QUOTE) break;
      else j++;
    }
    total += Math.min(j, s.length) - start;
    re.lastIndex = j + 1;
  }
  return total;
}

/** Whether `"usage":` at `p` is followed by an object (OpenAI sends `"usage":null` otherwise). */
export function usageObjectAt(buf: Buffer, p: number, end: number): boolean {
  const j = skipSpaces(buf, p + USAGE_KEY.length, end);
  return j < end && buf[j] === 0x7b;
}

/** Token counts an upstream reported; null members were not reported. */
export interface Reported {
  prompt: number | null;
  completion: number | null;
}

const count = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : null);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * Usage from one parsed JSON value: OpenAI `usage` (chat/completions/embeddings; Responses API
 * `input_tokens`/`output_tokens`, also nested under `response`) or Ollama
 * `prompt_eval_count`/`eval_count`.
 */
export function usageFromObject(o: unknown): Reported | null {
  if (!isObject(o)) return null;
  const resp = o['response'];
  const u = isObject(o['usage']) ? o['usage'] : isObject(resp) && isObject(resp['usage']) ? resp['usage'] : null;
  if (u !== null) {
    const prompt = count(u['prompt_tokens']) ?? count(u['input_tokens']);
    // Embeddings report no completion: it is 0, not unknown.
    const completion = count(u['completion_tokens']) ?? count(u['output_tokens']) ?? (prompt === null ? null : 0);
    return prompt === null && completion === null ? null : { prompt, completion };
  }
  const prompt = count(o['prompt_eval_count']);
  const completion = count(o['eval_count']);
  if (prompt === null && completion === null) return null;
  return { prompt, completion: completion ?? 0 };
}

/** The data of an SSE event (its `data:` lines joined by LF), or null when it has none. */
export function sseData(buf: Buffer, start: number, end: number): string | null {
  const text = buf.toString('utf8', start, end);
  let data: string | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === SPACE ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}

/** Parses JSON, or undefined. */
export function tryParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Usage from the end of a JSON body (the last `"usage":{…}` object, else Ollama's counters),
 * without parsing the body: every server we know puts usage after the content.
 */
export function usageFromTail(tail: Buffer): Reported | null {
  const p = tail.lastIndexOf(USAGE_KEY);
  if (p !== -1 && usageObjectAt(tail, p, tail.length)) {
    const open = tail.indexOf(0x7b, p + USAGE_KEY.length);
    const close = matchBrace(tail, open);
    if (close !== -1) {
      const r = usageFromObject({ usage: tryParse(tail.toString('utf8', open, close + 1)) });
      if (r !== null) return r;
    }
  }
  const text = tail.toString('latin1');
  const prompt = lastNumber(text, /"prompt_eval_count"\s*:\s*(\d+)/g);
  const completion = lastNumber(text, /"eval_count"\s*:\s*(\d+)/g);
  if (prompt === null && completion === null) return null;
  return { prompt, completion: completion ?? 0 };
}

function lastNumber(text: string, re: RegExp): number | null {
  let last: string | undefined;
  for (const m of text.matchAll(re)) last = m[1];
  return last === undefined ? null : Number(last);
}

/** Index of the brace closing the object opened at `open`, skipping strings; -1 if none. */
function matchBrace(buf: Buffer, open: number): number {
  let depth = 0;
  for (let j = open; j < buf.length; j++) {
    const c = buf[j];
    if (c === QUOTE) {
      for (j++; j < buf.length && buf[j] !== QUOTE; j++) if (buf[j] === BACKSLASH) j++;
    } else if (c === 0x7b) {
      depth++;
    } else if (c === 0x7d && --depth === 0) {
      return j;
    }
  }
  return -1;
}
