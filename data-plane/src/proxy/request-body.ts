/**
 * One look at a JSON request body: what routing, limits and counters need, and the body to
 * send upstream — the original bytes unless `stream_options.include_usage` has to be added.
 */
import { GatewayError } from '../errors.js';

export interface InspectedBody {
  /** `model` when it is a non-empty string, else null. */
  model: string | null;
  /** Whether the response will be streamed (SSE for OpenAI, NDJSON for Ollama). */
  stream: boolean;
  /** `max_tokens` / `max_completion_tokens` / `max_output_tokens` / Ollama `options.num_predict`. */
  maxTokens: number | null;
  /** The prompt's text (messages, prompt, system, input), for estimates and fingerprints. */
  promptText: string;
  /** Body to forward: the original bytes, or a rewritten copy when `injectedIncludeUsage`. */
  body: Uint8Array | null;
  /** We asked the upstream for a usage event the client did not ask for; strip it. */
  injectedIncludeUsage: boolean;
}

export interface BodyInput {
  path: string;
  /** The request's Content-Type, or null. */
  contentType: string | null;
  body: Uint8Array | null;
}

/** OpenAI endpoints whose streams carry usage only when `stream_options.include_usage` is set. */
const INCLUDE_USAGE_PATHS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/completions']);
/** Ollama endpoints that stream unless `stream: false` (Ollama API docs). */
const OLLAMA_STREAM_DEFAULT: ReadonlySet<string> = new Set(['/api/chat', '/api/generate']);

const INCLUDE_USAGE_MEMBER = Buffer.from(',"stream_options":{"include_usage":true}');

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function passthrough(body: Uint8Array | null): InspectedBody {
  return { model: null, stream: false, maxTokens: null, promptText: '', body, injectedIncludeUsage: false };
}

/** `application/json` or any `+json` type (RFC 6839 §3.1); parameters ignored. */
function isJsonType(contentType: string): boolean {
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json' || type.endsWith('+json');
}

function firstNonSpace(body: Uint8Array): number {
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return c as number;
  }
  return -1;
}

export function inspectRequestBody(input: BodyInput): InspectedBody {
  const { body, contentType } = input;
  if (body === null || body.length === 0) return passthrough(body);
  // `curl -d` sends form-urlencoded and Ollama ignores the type, so an object body without a
  // JSON type is still read — leniently: if it does not parse, it passes through untouched.
  const declaredJson = contentType !== null && isJsonType(contentType);
  const lenient = !declaredJson && (contentType === null || contentType.toLowerCase().startsWith('application/x-www-form-urlencoded'));
  if (!declaredJson && !(lenient && firstNonSpace(body) === 0x7b)) return passthrough(body);

  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let parsed: unknown;
  try {
    parsed = JSON.parse(buf.toString('utf8'));
  } catch {
    if (declaredJson) throw new GatewayError('invalid_json');
    return passthrough(body);
  }
  if (!isObject(parsed)) return passthrough(body);

  const path = input.path.length > 1 && input.path.endsWith('/') ? input.path.slice(0, -1) : input.path;
  const stream = OLLAMA_STREAM_DEFAULT.has(path) ? parsed['stream'] !== false : parsed['stream'] === true;
  const result: InspectedBody = {
    model: typeof parsed['model'] === 'string' && parsed['model'] !== '' ? parsed['model'] : null,
    stream,
    maxTokens: maxTokensOf(parsed),
    promptText: promptTextOf(parsed),
    body,
    injectedIncludeUsage: false,
  };
  if (stream && INCLUDE_USAGE_PATHS.has(path)) {
    const so = parsed['stream_options'];
    // An explicit `include_usage: false` is overridden too: usage is counted for every stream,
    // and the client still never sees the extra event.
    if (!(isObject(so) && so['include_usage'] === true)) {
      result.body = withIncludeUsage(buf, parsed, so);
      result.injectedIncludeUsage = true;
    }
  }
  return result;
}

/**
 * Adds `stream_options.include_usage: true`. When the client sent no `stream_options`, the member
 * is spliced in before the closing brace so every other byte (number precision, key order) is
 * kept; otherwise the object is re-serialised.
 */
function withIncludeUsage(raw: Buffer, parsed: Json, streamOptions: unknown): Uint8Array {
  if (streamOptions === undefined) {
    let end = raw.length - 1;
    while (end >= 0 && raw[end] !== 0x7d) end--;
    // `stream: true` is present, so the object is not empty and a leading comma is right.
    return Buffer.concat([raw.subarray(0, end), INCLUDE_USAGE_MEMBER, raw.subarray(end)]);
  }
  const so = isObject(streamOptions) ? streamOptions : {};
  return Buffer.from(JSON.stringify({ ...parsed, stream_options: { ...so, include_usage: true } }));
}

function positiveInt(v: unknown): number | null {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null;
}

function maxTokensOf(o: Json): number | null {
  const options = o['options'];
  return (
    positiveInt(o['max_tokens']) ??
    positiveInt(o['max_completion_tokens']) ??
    positiveInt(o['max_output_tokens']) ??
    (isObject(options) ? positiveInt(options['num_predict']) : null)
  );
}

/** Text of a content value: a string, or an array of parts whose `text` fields are strings. */
function contentText(v: unknown, out: string[]): void {
  if (typeof v === 'string') {
    out.push(v);
  } else if (Array.isArray(v)) {
    for (const part of v) {
      if (typeof part === 'string') out.push(part);
      else if (isObject(part)) {
        if (typeof part['text'] === 'string') out.push(part['text']);
        else if (part['content'] !== undefined) contentText(part['content'], out);
      }
    }
  }
}

function promptTextOf(o: Json): string {
  const out: string[] = [];
  for (const key of ['system', 'instructions'] as const) {
    if (typeof o[key] === 'string') out.push(o[key]);
  }
  const messages = o['messages'];
  if (Array.isArray(messages)) {
    for (const m of messages) if (isObject(m)) contentText(m['content'], out);
  }
  // Completions / Ollama generate: `prompt`; embeddings / Responses API: `input`.
  contentText(o['prompt'], out);
  contentText(o['input'], out);
  return out.join('\n');
}
