import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors.js';
import { inspectRequestBody } from './request-body.js';

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const inspect = (path: string, body: Buffer | null, contentType: string | null = 'application/json') =>
  inspectRequestBody({ path, contentType, body });

describe('inspectRequestBody', () => {
  it('reads model, stream, max tokens and prompt text of a chat request; non-stream bodies are untouched', () => {
    const body = json({
      model: 'gpt-4o',
      max_completion_tokens: 50,
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'Hi' },
            { type: 'image_url', image_url: { url: 'x' } },
          ],
        },
      ],
    });
    const r = inspect('/v1/chat/completions', body);
    expect(r).toEqual({ model: 'gpt-4o', stream: false, maxTokens: 50, promptText: 'Be brief.\nHi', body, injectedIncludeUsage: false });
    expect(r.body).toBe(body);
  });

  it('adds stream_options.include_usage to streamed chat/completions, keeping every other byte', () => {
    const raw = '{"model":"m","stream":true,"seed":12345678901234567890,"messages":[{"role":"user","content":"x"}]}  \n';
    const r = inspect('/v1/chat/completions', Buffer.from(raw));
    expect(r.injectedIncludeUsage).toBe(true);
    expect(Buffer.from(r.body ?? []).toString()).toBe(
      '{"model":"m","stream":true,"seed":12345678901234567890,"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}  \n',
    );
    const c = inspect('/v1/completions/', json({ model: 'm', stream: true, prompt: ['a', 'b'], max_tokens: 7 }));
    expect(c).toMatchObject({ injectedIncludeUsage: true, promptText: 'a\nb', maxTokens: 7 });
    expect(JSON.parse(Buffer.from(c.body ?? []).toString()).stream_options).toEqual({ include_usage: true });
  });

  it('rewrites existing stream_options (also an explicit include_usage: false) and leaves include_usage: true alone', () => {
    const off = inspect(
      '/v1/chat/completions',
      json({ model: 'm', stream: true, stream_options: { include_usage: false, other: 1 }, messages: [] }),
    );
    expect(off.injectedIncludeUsage).toBe(true);
    expect(JSON.parse(Buffer.from(off.body ?? []).toString()).stream_options).toEqual({ include_usage: true, other: 1 });
    const body = json({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [] });
    const on = inspect('/v1/chat/completions', body);
    expect(on.injectedIncludeUsage).toBe(false);
    expect(on.body).toBe(body);
  });

  it('does not inject for embeddings or Ollama, where usage is always reported', () => {
    expect(inspect('/v1/embeddings', json({ model: 'e', input: ['a', 'b'] }))).toMatchObject({
      injectedIncludeUsage: false,
      promptText: 'a\nb',
      stream: false,
    });
    // Ollama chat/generate stream unless stream is false.
    expect(
      inspect('/api/chat', json({ model: 'llama3.2', messages: [{ role: 'user', content: 'hey' }], options: { num_predict: 20 } })),
    ).toMatchObject({ stream: true, maxTokens: 20, promptText: 'hey', injectedIncludeUsage: false });
    expect(inspect('/api/generate', json({ model: 'llama3.2', prompt: 'p', system: 's', stream: false }))).toMatchObject({
      stream: false,
      promptText: 's\np',
    });
  });

  it('malformed JSON with a JSON content type is invalid_json', () => {
    expect(() => inspect('/v1/chat/completions', Buffer.from('{"model":'))).toThrow(GatewayError);
    try {
      inspect('/v1/chat/completions', Buffer.from('{nope'), 'application/json; charset=utf-8');
    } catch (e) {
      expect((e as GatewayError).code).toBe('invalid_json');
    }
  });

  it('non-JSON types pass through untouched; curl -d JSON without a JSON type is still read', () => {
    const form = Buffer.from('--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc\r\n--b--');
    const r = inspect('/v1/audio/transcriptions', form, 'multipart/form-data; boundary=b');
    expect(r).toEqual({ model: null, stream: false, maxTokens: null, promptText: '', body: form, injectedIncludeUsage: false });
    expect(inspect('/api/generate', json({ model: 'llama3.2', prompt: 'hi' }), 'application/x-www-form-urlencoded')).toMatchObject({
      model: 'llama3.2',
      stream: true,
    });
    const notJson = Buffer.from('{broken');
    expect(inspect('/api/generate', notJson, null).body).toBe(notJson);
    expect(inspect('/v1/models', null)).toMatchObject({ model: null, body: null });
  });

  it('non-object JSON and odd fields are not trusted', () => {
    expect(inspect('/v1/chat/completions', json([1, 2]))).toMatchObject({ model: null });
    expect(inspect('/v1/chat/completions', json({ model: 7, stream: 'yes', max_tokens: -1, messages: 'x' }))).toMatchObject({
      model: null,
      stream: false,
      maxTokens: null,
      promptText: '',
      injectedIncludeUsage: false,
    });
  });
});
