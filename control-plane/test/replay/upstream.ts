/**
 * The replay's model server: an OpenAI-compatible stand-in (POST /v1/chat/completions, non-
 * streaming `chat.completion` JSON with `usage`, errors in OpenAI's shape) whose usage follows the
 * request as a real server's would: prompt_tokens from the prompt's size (4 bytes a token),
 * completion_tokens = max_tokens when given (else 20). Models outside `models` get OpenAI's 404
 * `model_not_found`, as a real server answers an enumeration probe.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReplayUpstream {
  url: string;
  requests: number;
  close(): Promise<void>;
}

export async function startReplayUpstream(models: readonly string[]): Promise<ReplayUpstream> {
  const state = { requests: 0 };
  const server: Server = createServer(async (req, res) => {
    let text = '';
    for await (const c of req) text += c;
    state.requests++;
    const path = (req.url ?? '').split('?')[0];
    const send = (status: number, body: unknown): void => {
      const s = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) }).end(s);
    };
    if (req.method === 'GET' && path === '/v1/models')
      return send(200, { object: 'list', data: models.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'replay' })) });
    if (req.method === 'GET' && path === '/') return send(200, { status: 'ok' });
    if (req.method !== 'POST' || path !== '/v1/chat/completions')
      return send(404, { error: { message: `Unknown path ${path}`, type: 'invalid_request_error', code: null } });
    let body: { model?: string; max_tokens?: number; messages?: Array<{ content?: string }> };
    try {
      body = JSON.parse(text);
    } catch {
      return send(400, {
        error: { message: 'We could not parse the JSON body of your request.', type: 'invalid_request_error', code: null },
      });
    }
    const model = body.model ?? '';
    if (!models.includes(model))
      return send(404, {
        error: {
          message: `The model \`${model}\` does not exist or you do not have access to it.`,
          type: 'invalid_request_error',
          param: null,
          code: 'model_not_found',
        },
      });
    const promptBytes = (body.messages ?? []).reduce((n, m) => n + Buffer.byteLength(m.content ?? ''), 0);
    const prompt = Math.max(1, Math.ceil(promptBytes / 4));
    const completion = Math.max(1, Math.min(body.max_tokens ?? 20, 100_000));
    send(200, {
      id: `chatcmpl-replay${state.requests}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'ok '.repeat(Math.min(completion, 2000)).trim() },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return state.requests;
    },
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}
