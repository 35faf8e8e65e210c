// OpenAI chat-completions wire format, pre-built as bytes. Shared by the mock upstream (which
// sends them) and the bench client (which recomputes the large body's SHA-256 to verify it).
import { createHash } from 'node:crypto';

const CREATED = 1_735_689_600; // fixed, so every body is reproducible byte for byte
const ID = 'chatcmpl-bench0000000000000000000000';
const FINGERPRINT = 'fp_bench0001';
const WORDS = [' The', ' quick', ' brown', ' fox', ' jumps', ' over', ' the', ' lazy', ' dog', '.'];
export const DONE = Buffer.from('data: [DONE]\n\n');
export const PROMPT_TOKENS = 12;

const head = (model) =>
  `{"id":"${ID}","object":"chat.completion.chunk","created":${CREATED},"model":${JSON.stringify(model)},` +
  `"system_fingerprint":"${FINGERPRINT}","choices":[`;

const usage = (completion) =>
  `{"prompt_tokens":${PROMPT_TOKENS},"completion_tokens":${completion},"total_tokens":${PROMPT_TOKENS + completion}}`;

/** Non-streaming `chat.completion` answer with `usage`; `tokens` words of content. */
export function chatJson(model, tokens) {
  const content = Array.from({ length: tokens }, (_, i) => WORDS[i % WORDS.length])
    .join('')
    .trimStart();
  const body = {
    id: ID,
    object: 'chat.completion',
    created: CREATED,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: JSON.parse(usage(tokens)),
    system_fingerprint: FINGERPRINT,
  };
  return Buffer.from(JSON.stringify(body));
}

/**
 * A streamed answer as an array of writes: `events` chunk events (role, events-2 content tokens,
 * finish), the last write also carrying the usage chunk (when asked) and `data: [DONE]`.
 */
export function sseFrames(model, events, includeUsage) {
  const n = Math.max(2, events);
  const h = head(model);
  const tail = includeUsage ? ',"usage":null}' : '}';
  const chunk = (choice) => `data: ${h}${choice}]${tail}\n\n`;
  const frames = [chunk('{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}')];
  for (let i = 0; i < n - 2; i++) {
    frames.push(chunk(`{"index":0,"delta":{"content":${JSON.stringify(WORDS[i % WORDS.length])}},"logprobs":null,"finish_reason":null}`));
  }
  let last = chunk('{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}');
  if (includeUsage) last += `data: ${h}],"usage":${usage(n - 2)}}\n\n`;
  frames.push(last + 'data: [DONE]\n\n');
  return frames.map((f) => Buffer.from(f));
}

const LARGE_MODEL = 'bench-large';
const LARGE_FRAME = 16 * 1024;

/**
 * A large SSE body of exactly `bytes` bytes (clamped to a small minimum): chunk events of about
 * 16 KiB each (letters as content, so nothing needs escaping), then `data: [DONE]`. Only two
 * distinct event buffers exist, so a 20 MB body costs ~32 KiB of memory. Deterministic.
 */
export function largePlan(bytes) {
  const prefix = `data: ${head(LARGE_MODEL)}{"index":0,"delta":{"content":"`;
  const suffix = '"},"logprobs":null,"finish_reason":null}]}\n\n';
  const overhead = prefix.length + suffix.length;
  const total = Math.max(Math.floor(bytes), overhead + 1 + DONE.length);
  const payload = total - DONE.length;
  const k = Math.max(1, Math.ceil(payload / LARGE_FRAME));
  const base = Math.floor(payload / k);
  const extra = payload % k;
  const event = (size) => {
    const filler = 'abcdefghijklmnopqrstuvwxyz'.repeat(Math.ceil(size / 26) + 1).slice(0, size - overhead);
    return Buffer.from(prefix + filler + suffix);
  };
  const big = event(base + 1);
  const small = event(base);
  const frames = [];
  for (let i = 0; i < k; i++) frames.push(i < extra ? big : small);
  frames.push(DONE);
  const hash = createHash('sha256');
  for (const f of frames) hash.update(f);
  return { bytes: total, frames, sha256: hash.digest('hex') };
}

/** OpenAI-style error body. */
export function errorJson(message, type = 'invalid_request_error') {
  return Buffer.from(JSON.stringify({ error: { message, type, param: null, code: null } }));
}
