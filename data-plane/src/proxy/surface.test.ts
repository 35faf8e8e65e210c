import { describe, expect, it } from 'vitest';
import { createSurface, mayManageModels, type SurfaceVerdict } from './surface.js';

const off = createSurface({ modelManagement: false });
const on = createSurface({ modelManagement: true });

const status = (v: SurfaceVerdict): number => (v.ok ? 200 : v.error.status);

describe('allow-list per family', () => {
  it('forwards the OpenAI inference surface', () => {
    for (const p of ['chat/completions', 'completions', 'embeddings', 'responses', 'moderations']) {
      expect(off.check('POST', `/v1/${p}`), p).toEqual({ ok: true, family: 'openai', management: false });
    }
    expect(off.check('GET', '/v1/models').ok).toBe(true);
    expect(off.check('GET', '/v1/models/gpt-4o-mini').ok).toBe(true);
    // Hugging Face style ids served by vLLM, Ollama namespaced names and tags.
    expect(off.check('GET', '/v1/models/meta-llama/Llama-3.1-8B-Instruct').ok).toBe(true);
    expect(off.check('GET', '/v1/models/library/llama3:latest').ok).toBe(true);
  });

  it('forwards the Ollama inference surface', () => {
    for (const p of ['chat', 'generate', 'embed', 'embeddings', 'show'])
      expect(off.check('POST', `/api/${p}`), p).toEqual({ ok: true, family: 'ollama', management: false });
    for (const p of ['tags', 'version', 'ps']) expect(off.check('GET', `/api/${p}`).ok, p).toBe(true);
  });

  it('answers 404 for anything else, in the family of the path', () => {
    const cases: Array<[string, string]> = [
      ['POST', '/v1/files'],
      ['POST', '/v1/fine_tuning/jobs'],
      ['GET', '/v1/chat/completions/x'],
      ['POST', '/v1/chat'],
      ['GET', '/v1/modelsx'],
      ['GET', '/v1'],
      ['POST', '/api/chatx'],
      ['GET', '/api/blobs/sha256:abc'],
      ['TRACE', '/api/unknown'],
    ];
    for (const [m, p] of cases) {
      const v = off.check(m, p);
      expect(v.ok, `${m} ${p}`).toBe(false);
      if (!v.ok) expect(v.error.code, `${m} ${p}`).toBe('not_found');
    }
    const v = off.check('POST', '/api/nope');
    expect(v.family).toBe('ollama');
  });

  it('answers 405 with Allow for a known path and another method (TRACE, CONNECT, … included)', () => {
    const cases: Array<[string, string, string]> = [
      ['GET', '/v1/chat/completions', 'POST'],
      ['DELETE', '/v1/models/x', 'GET, HEAD'],
      ['TRACE', '/v1/chat/completions', 'POST'],
      ['CONNECT', '/api/chat', 'POST'],
      ['OPTIONS', '/api/tags', 'GET, HEAD'],
      ['POST', '/v1/models', 'GET, HEAD'],
      ['PUT', '/api/generate', 'POST'],
    ];
    for (const [m, p, allow] of cases) {
      const v = off.check(m, p);
      expect(status(v), `${m} ${p}`).toBe(405);
      if (!v.ok) {
        expect(v.error.code).toBe('method_not_allowed');
        expect(v.error.headers).toEqual([['allow', allow]]);
      }
    }
  });
});

describe('ambiguous paths are refused with 400 before the allow-list', () => {
  const bad = [
    '/v1/../api/pull',
    '/v1/./chat/completions',
    '/v1/chat/..',
    '/v1/%2e%2e/x',
    '/v1/%2E%2E/x',
    '/v1/.%2e/x',
    '/v1/chat%2fcompletions',
    '/v1/chat%2Fcompletions',
    '/v1/models/a%5cb',
    '/v1/models/a%5Cb',
    '/v1/models/%2e',
    '/api/chat\\..\\pull',
    '/v1/models\\x',
    '/v1//chat/completions',
    '/v1/chat//completions',
    '/v1/chat/completions/',
    '/v1/models/',
    '/api/',
    '/api/tags/',
  ];
  for (const p of bad) {
    it(p, () => {
      const v = on.check('POST', p);
      expect(v.ok).toBe(false);
      if (!v.ok) {
        expect(v.error.status).toBe(400);
        expect(v.error.code).toBe('bad_request');
      }
    });
  }

  it('keeps ordinary percent-encoding and dots inside segments', () => {
    expect(off.check('GET', '/v1/models/ft%3Agpt-4o%3Aorg').ok).toBe(true);
    expect(off.check('GET', '/v1/models/llama3.1:8b').ok).toBe(true);
    expect(off.check('GET', '/v1/models/..hidden').ok).toBe(true);
  });
});

describe('model management', () => {
  it('does not exist while the setting is off (404 like any unknown path)', () => {
    for (const [m, p] of [
      ['DELETE', '/api/delete'],
      ['POST', '/api/pull'],
      ['POST', '/api/push'],
      ['POST', '/api/create'],
      ['POST', '/api/copy'],
      ['HEAD', '/api/blobs/sha256:00'],
      ['POST', '/api/blobs/sha256:00'],
    ]) {
      const v = off.check(m!, p!);
      expect(status(v), `${m} ${p}`).toBe(404);
    }
  });

  it('is a management call when on, with its own methods', () => {
    expect(on.check('DELETE', '/api/delete')).toEqual({ ok: true, family: 'ollama', management: true });
    for (const p of ['pull', 'push', 'create', 'copy'])
      expect(on.check('POST', `/api/${p}`)).toEqual({ ok: true, family: 'ollama', management: true });
    expect(on.check('HEAD', '/api/blobs/sha256:0a1b').ok).toBe(true);
    expect(on.check('POST', '/api/blobs/sha256:0a1b').ok).toBe(true);
    const wrong = on.check('GET', '/api/pull');
    expect(status(wrong)).toBe(405);
    if (!wrong.ok) expect(wrong.error.headers).toEqual([['allow', 'POST']]);
    const blob = on.check('DELETE', '/api/blobs/sha256:0a1b');
    if (!blob.ok) expect(blob.error.headers).toEqual([['allow', 'HEAD, POST']]);
    expect(status(on.check('POST', '/api/blobs/sha256:0a1b/x'))).toBe(404);
    // The inference surface is unchanged and never a management call.
    expect(on.check('POST', '/api/chat')).toEqual({ ok: true, family: 'ollama', management: false });
  });

  it('is for operators and admins only', () => {
    expect(mayManageModels('operator')).toBe(true);
    expect(mayManageModels('admin')).toBe(true);
    expect(mayManageModels('user')).toBe(false);
    expect(mayManageModels('')).toBe(false);
  });
});
