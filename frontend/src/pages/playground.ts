import { errorFrom } from '../api.js';
import { interpretChatEvent } from '../chat-stream.js';
import { h, pageHeading } from '../dom.js';
import { formAlert, inputField, selectField, textareaField } from '../forms.js';
import { formatNumber } from '../format.js';
import { playgroundKey, setPlaygroundKey } from '../playground-key.js';
import type { Page, PageContext } from '../router.js';
import { createSseParser } from '../sse.js';

/**
 * A chat prompt through the gateway itself (POST /v1/chat/completions, stream: true) with one of
 * the user's API keys, rendered as the tokens arrive. The key is sent only as the request's
 * Authorization header, never with the session cookie (credentials: 'omit'), and kept in memory
 * (playground-key.ts).
 */
export function renderPlayground(_ctx: PageContext): Page {
  const remembered = playgroundKey();
  const key = inputField({
    name: 'api-key',
    label: 'API key',
    type: 'password',
    required: true,
    value: remembered?.secret,
    hint: "Kept in this tab's memory only: never saved, and sent only to this gateway. Reloading the page forgets it.",
  });
  const keyAlert = formAlert();
  const loadModels = h('button', { type: 'submit' }, 'Use this key');
  const keyForm = h(
    'form',
    { class: 'stack narrow', novalidate: true },
    keyAlert.node,
    key.wrap,
    h('div', { class: 'actions' }, loadModels),
  );
  const keyNote = h(
    'p',
    { class: 'muted', role: 'status' },
    remembered ? `Using the key you just created (${remembered.label ?? 'new key'}).` : '',
  );

  const model = selectField({ name: 'model', label: 'Model', required: true });
  model.input.disabled = true;
  model.input.append(h('option', { value: '' }, 'Enter a key to list its models'));
  const prompt = textareaField({ name: 'prompt', label: 'Prompt', required: true, rows: 4, maxlength: 20_000 });
  const maxTokens = inputField({
    name: 'max-tokens',
    label: 'Max tokens',
    type: 'number',
    required: true,
    value: '256',
    hint: 'Counted against your tier, reserved when the request starts.',
  });
  maxTokens.input.min = '1';
  maxTokens.input.max = '4096';
  const send = h('button', { type: 'submit', class: 'primary' }, 'Send');
  const stop = h('button', { type: 'button', disabled: true }, 'Stop');
  const promptAlert = formAlert();
  const promptForm = h(
    'form',
    { class: 'stack', novalidate: true },
    promptAlert.node,
    model.wrap,
    prompt.wrap,
    maxTokens.wrap,
    h('div', { class: 'actions' }, send, stop),
  );

  // role=log is a polite live region; aria-busy holds announcements until the answer is complete,
  // so a screen reader reads the whole answer once instead of every token.
  const output = h('div', {
    class: 'output',
    id: 'playground-output',
    role: 'log',
    'aria-labelledby': 'output-title',
    'aria-busy': 'false',
    tabindex: 0,
  });
  const status = h('p', { class: 'stream-status', role: 'status' });
  let controller: AbortController | null = null;

  async function listModels(): Promise<void> {
    keyAlert.show(null);
    key.setError(null);
    const secret = key.input.value.trim();
    if (!secret) {
      key.setError('Paste an API key (fgk_…) or create one on the API keys page.');
      key.input.focus();
      return;
    }
    setPlaygroundKey(secret, remembered?.secret === secret ? remembered.label : null);
    loadModels.disabled = true;
    try {
      const res = await fetch('/v1/models', { headers: { authorization: `Bearer ${secret}` }, credentials: 'omit' });
      if (!res.ok) throw await errorFrom(res);
      const body = (await res.json()) as { data?: Array<{ id?: unknown }> };
      const ids = (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
      model.input.replaceChildren(
        ...(ids.length ? ids.map((id) => h('option', { value: id }, id)) : [h('option', { value: '' }, 'No models available')]),
      );
      model.input.disabled = ids.length === 0;
      keyNote.textContent = `Key accepted: ${ids.length} model${ids.length === 1 ? '' : 's'} available.`;
    } catch (e) {
      key.setError(e instanceof Error ? e.message : 'The models could not be listed.');
      key.input.focus();
    } finally {
      loadModels.disabled = false;
    }
  }

  async function run(): Promise<void> {
    promptAlert.show(null);
    prompt.setError(prompt.input.value.trim() ? null : 'Write a prompt.');
    const max = Number(maxTokens.input.value);
    maxTokens.setError(Number.isInteger(max) && max >= 1 && max <= 4096 ? null : 'A whole number from 1 to 4096.');
    const secret = playgroundKey()?.secret;
    if (!secret || model.input.disabled) {
      promptAlert.show('Enter an API key and choose a model first.');
      key.input.focus();
      return;
    }
    const bad = [prompt, maxTokens].find((f) => f.input.getAttribute('aria-invalid') === 'true');
    if (bad) return bad.input.focus();

    controller = new AbortController();
    const text = document.createTextNode('');
    output.replaceChildren(text);
    output.setAttribute('aria-busy', 'true');
    send.disabled = true;
    stop.disabled = false;
    status.textContent = 'Waiting for the first token…';
    const started = performance.now();
    let firstTokenMs: number | null = null;
    let usage: { promptTokens: number; completionTokens: number } | null = null;
    let failure: string | null = null;
    try {
      const res = await fetch('/v1/chat/completions', {
        method: 'POST',
        credentials: 'omit',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({
          model: model.input.value,
          stream: true,
          stream_options: { include_usage: true },
          max_tokens: max,
          messages: [{ role: 'user', content: prompt.input.value }],
        }),
        signal: controller.signal,
      });
      if (!res.ok || !res.body) {
        const err = await errorFrom(res);
        failure = err.retryAfter === null ? err.message : `${err.message} Retry in ${err.retryAfter} s.`;
        return;
      }
      status.textContent = 'Streaming…';
      const parser = createSseParser({
        onEvent(e) {
          for (const item of interpretChatEvent(e)) {
            if (item.kind === 'text') {
              firstTokenMs ??= performance.now() - started;
              text.appendData(item.text);
              output.scrollTop = output.scrollHeight;
            } else if (item.kind === 'usage') usage = item;
            else if (item.kind === 'error') failure = item.message;
          }
        },
      });
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.feedBytes(value);
      }
      parser.end();
    } catch (e) {
      failure = (e as Error).name === 'AbortError' ? null : 'The connection to the gateway was lost.';
      if ((e as Error).name === 'AbortError') status.textContent = 'Stopped. The request was cancelled, upstream too.';
    } finally {
      const aborted = controller?.signal.aborted ?? false;
      controller = null;
      send.disabled = false;
      stop.disabled = true;
      output.setAttribute('aria-busy', 'false');
      if (failure) {
        status.textContent = `Error: ${failure}`;
        promptAlert.show(failure);
      } else if (!aborted) {
        const u = usage as { promptTokens: number; completionTokens: number } | null;
        const first = firstTokenMs === null ? '' : ` First token after ${formatNumber(Math.round(firstTokenMs))} ms.`;
        status.textContent = `Done.${u ? ` ${formatNumber(u.promptTokens)} prompt + ${formatNumber(u.completionTokens)} completion tokens.` : ''}${first}`;
      }
    }
  }

  keyForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void listModels();
  });
  promptForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!controller) void run();
  });
  stop.addEventListener('click', () => controller?.abort());
  if (remembered) void listModels();

  return {
    node: h(
      'div',
      { class: 'page' },
      pageHeading('Playground'),
      h(
        'p',
        { class: 'lede' },
        'Send a chat prompt through the gateway with one of your API keys and watch the answer arrive token by token. It counts towards the key’s usage like any request.',
      ),
      keyForm,
      keyNote,
      promptForm,
      h('section', { class: 'response', 'aria-labelledby': 'output-title' }, h('h2', { id: 'output-title' }, 'Response'), output, status),
    ),
    dispose: () => controller?.abort(),
  };
}
