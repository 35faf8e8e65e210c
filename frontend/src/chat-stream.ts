import type { SseEvent } from './sse.js';

/**
 * What one event of an OpenAI chat-completions stream means to the playground. The stream is
 * `data: {chunk}` events ending with `data: [DONE]`; with `stream_options.include_usage` a last
 * chunk with empty `choices` carries the usage. The gateway reports a failure after the stream
 * started as one `data: {"error": {...}}` event followed by a clean end (README, API).
 */
export type ChatItem =
  | { kind: 'text'; text: string }
  | { kind: 'usage'; promptTokens: number; completionTokens: number }
  | { kind: 'error'; message: string; code: string | null }
  | { kind: 'done' };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function interpretChatEvent(e: SseEvent): ChatItem[] {
  if (e.event !== 'message' && e.event !== 'error') return [];
  if (e.data.trim() === '[DONE]') return [{ kind: 'done' }];
  let json: unknown;
  try {
    json = JSON.parse(e.data);
  } catch {
    return [{ kind: 'error', message: 'The stream sent an event that is not JSON.', code: null }];
  }
  if (!isRecord(json)) return [];
  const out: ChatItem[] = [];
  const err = json['error'];
  if (isRecord(err)) {
    const message = typeof err['message'] === 'string' ? err['message'] : 'The stream failed.';
    out.push({ kind: 'error', message, code: typeof err['code'] === 'string' ? err['code'] : null });
    return out;
  }
  const choices = Array.isArray(json['choices']) ? json['choices'] : [];
  for (const c of choices) {
    if (!isRecord(c)) continue;
    const delta = c['delta'];
    // Chat completions put text in delta.content; legacy completions in choice.text.
    const text =
      isRecord(delta) && typeof delta['content'] === 'string' ? delta['content'] : typeof c['text'] === 'string' ? c['text'] : '';
    if (text !== '') out.push({ kind: 'text', text });
  }
  const usage = json['usage'];
  if (isRecord(usage) && typeof usage['prompt_tokens'] === 'number' && typeof usage['completion_tokens'] === 'number') {
    out.push({ kind: 'usage', promptTokens: usage['prompt_tokens'], completionTokens: usage['completion_tokens'] });
  }
  return out;
}
