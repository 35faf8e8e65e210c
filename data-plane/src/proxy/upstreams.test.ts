import { describe, expect, it } from 'vitest';
import { parseUpstreamsFileText, parseUpstreamsJson, parseUpstreamUrls, UpstreamConfigError } from './upstreams.js';

describe('DOWNSTREAM_AI_URLS', () => {
  it('parses comma-separated base URLs with host:port names', () => {
    const defs = parseUpstreamUrls(' http://127.0.0.1:11434 , https://gpu-1.internal/ollama/,http://127.0.0.1:11434');
    expect(defs.map((d) => [d.name, d.baseUrl.href, d.weight, d.models, d.credential])).toEqual([
      ['127.0.0.1:11434', 'http://127.0.0.1:11434/', 1, [], null],
      ['gpu-1.internal', 'https://gpu-1.internal/ollama/', 1, [], null],
      ['127.0.0.1:11434#2', 'http://127.0.0.1:11434/', 1, [], null],
    ]);
  });

  it('names the bad entry and never echoes credentials', () => {
    expect(() => parseUpstreamUrls('http://a:1,ftp://b')).toThrow('DOWNSTREAM_AI_URLS entry 2: url ftp://b/ must use http or https');
    expect(() => parseUpstreamUrls('http://a:1,,http://b')).toThrow(/entry 2: empty/);
    expect(() => parseUpstreamUrls('not a url')).toThrow(/entry 1: url is not a valid absolute URL/);
    expect(() => parseUpstreamUrls('')).toThrow(UpstreamConfigError);
    let message = '';
    try {
      parseUpstreamUrls('http://user:hunter2@host:1/?key=sk-secret');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/entry 1: url http:\/\/host:1\/ must not embed credentials/);
    expect(message).not.toMatch(/hunter2|sk-secret|user/);
    expect(() => parseUpstreamUrls('http://host/?a=1')).toThrow(/query string/);
  });
});

describe('upstreams file', () => {
  it('parses entries with defaults', () => {
    const defs = parseUpstreamsJson([
      { name: 'local', url: 'http://127.0.0.1:11434', models: ['llama3', 'llama3'] },
      { name: 'openai', url: 'https://api.openai.com', credential: 'sk-abc', weight: 3 },
    ]);
    expect(defs[0]).toMatchObject({ name: 'local', credential: null, models: ['llama3'], weight: 1 });
    expect(defs[1]).toMatchObject({ name: 'openai', credential: 'sk-abc', models: [], weight: 3 });
  });

  it('errors name the entry and the field, never the credential', () => {
    const cases: Array<[unknown, RegExp]> = [
      [[], /must list at least one upstream/],
      [{ name: 'x' }, /upstreams file: Invalid input/],
      [
        [
          { name: 'a', url: 'http://a' },
          { name: 'b', url: 'http://b', weight: 0 },
        ],
        /entry 2 \("b"\): weight: /,
      ],
      [[{ name: 'a', url: 'http://a', modles: [] }], /entry 1 \("a"\): Unrecognized key: "modles"/],
      [
        [
          { name: 'a', url: 'http://a' },
          { name: 'a', url: 'http://b' },
        ],
        /entry 2 \("a"\): duplicate name/,
      ],
      [[{ name: 'bad name!', url: 'http://a' }], /entry 1: name: must be/],
      [[{ name: 'a', url: 'http://a', credential: 42 }], /entry 1 \("a"\): credential: Invalid input/],
      [[{ name: 'a', url: 'http://u:sk-zzz@a' }], /entry 1 \("a"\): url http:\/\/a\/ must not embed credentials/],
    ];
    for (const [value, re] of cases) expect(() => parseUpstreamsJson(value), re.source).toThrow(re);
    try {
      parseUpstreamsJson([{ name: 'a', url: 'gopher://a', credential: 'sk-very-secret' }]);
    } catch (e) {
      expect((e as Error).message).not.toContain('sk-very-secret');
    }
  });

  it('malformed JSON text does not quote the file', () => {
    expect(() => parseUpstreamsFileText('[{"name":"a","credential":"sk-secret",}]', 'upstreams.json')).toThrow(
      /^upstreams.json: not valid JSON$/,
    );
  });
});
