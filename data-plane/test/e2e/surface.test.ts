/**
 * Issue 12 items 1, 7 (duplicate Content-Length, forwarded headers) and 4 (TRUSTED_PROXIES
 * CIDRs), through the real gateway over TLS against the mock upstream, which records every
 * request it receives: what is refused must never reach it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { startMockUpstream, type MockUpstream, type RecordedRequest } from '../support/mock-upstream.js';
import { openTls } from '../support/raw-tls.js';

let mock: MockUpstream;
/** Defaults: model management off, no trusted proxy. */
let gw: InProcessGateway;
/** PROXY_MODEL_MANAGEMENT=true, TRUSTED_PROXIES as CIDRs covering the test client. */
let managed: InProcessGateway;
const keys = { user: '', operator: '', managedUser: '', managedOperator: '' };

async function issue(g: InProcessGateway, role: 'user' | 'operator'): Promise<string> {
  const email = `${role}-${Math.random().toString(36).slice(2)}@example.com`;
  const { secret } = await g.issueKey(email, 'enterprise');
  if (role === 'operator') await g.db.sql`UPDATE users SET role = 'operator' WHERE email = ${email}`;
  return secret;
}

beforeAll(async () => {
  mock = await startMockUpstream();
  [gw, managed] = await Promise.all([
    startInProcessGateway({ upstreams: mock.url }),
    startInProcessGateway({ upstreams: mock.url, env: { PROXY_MODEL_MANAGEMENT: 'true', TRUSTED_PROXIES: '127.0.0.0/8, ::1/128' } }),
  ]);
  keys.user = await issue(gw, 'user');
  keys.operator = await issue(gw, 'operator');
  keys.managedUser = await issue(managed, 'user');
  keys.managedOperator = await issue(managed, 'operator');
});
afterAll(async () => {
  await Promise.all([gw?.stop(), managed?.stop()]);
  await mock?.close();
});

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: string;
  /** The server closed the connection (rather than leaving it idle). */
  closed: boolean;
}

/**
 * One raw request over TLS (bytes exactly as given: paths are not normalised, framing can be
 * broken on purpose). Resolves when the server closes or after `idleMs` of silence.
 */
async function raw(port: number, bytes: string, idleMs = 1000): Promise<Answer> {
  const socket = await openTls(port);
  return new Promise((resolve) => {
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      socket.destroy();
      const end = text.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = (end === -1 ? text : text.slice(0, end)).split('\r\n');
      const headers = new Map<string, string>();
      for (const l of lines) headers.set(l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim());
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0),
        headers,
        body: end === -1 ? '' : text.slice(end + 4),
        closed,
      });
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => finish(false), idleMs);
    };
    socket.on('data', (b: Buffer) => {
      text += b.toString('latin1');
      arm();
    });
    socket.once('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(bytes);
    arm();
  });
}

/** A request line and headers; `Connection: close` so the server ends the exchange itself. */
const head = (method: string, path: string, key: string | null, extra = ''): string =>
  `${method} ${path} HTTP/1.1\r\nHost: localhost\r\n${key ? `Authorization: Bearer ${key}\r\n` : ''}${extra}Connection: close\r\n\r\n`;

const post = (path: string, key: string, body: string, extra = ''): string =>
  `POST ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`;

/** Every request the mock receives while `fn` runs (health probes to `/` excluded). */
async function seenBy(fn: () => Promise<void>): Promise<RecordedRequest[]> {
  const seen: RecordedRequest[] = [];
  const off = mock.onRequest((r) => {
    if (r.path !== '/') seen.push(r);
  });
  try {
    await fn();
  } finally {
    off();
  }
  return seen;
}

const chat = JSON.stringify({ model: 'mock-model', stream: false, messages: [{ role: 'user', content: 'hi' }] });

describe('only the inference surface reaches the upstream', () => {
  it('refuses management, ambiguous paths and wrong methods in the family shape, and the upstream never sees them', async () => {
    const cases: Array<{ method: string; path: string; status: number; allow?: string; body?: boolean }> = [
      { method: 'DELETE', path: '/api/delete', status: 404, body: true },
      { method: 'POST', path: '/api/pull', status: 404, body: true },
      { method: 'POST', path: '/api/push', status: 404, body: true },
      { method: 'POST', path: '/api/create', status: 404, body: true },
      { method: 'POST', path: '/api/copy', status: 404, body: true },
      { method: 'POST', path: '/api/blobs/sha256:0a1b2c', status: 404, body: true },
      { method: 'POST', path: '/v1/files', status: 404, body: true },
      { method: 'GET', path: '/v1/../api/tags', status: 400 },
      { method: 'GET', path: '/v1/%2e%2e/api/tags', status: 400 },
      { method: 'GET', path: '/v1/%2E%2e/api/tags', status: 400 },
      { method: 'POST', path: '/v1/chat%2Fcompletions', status: 400, body: true },
      { method: 'POST', path: '/api/chat%5c..%5cpull', status: 400, body: true },
      { method: 'POST', path: '/api/chat\\..\\pull', status: 400, body: true },
      { method: 'POST', path: '/v1//chat/completions', status: 400, body: true },
      { method: 'POST', path: '/v1/chat/completions/', status: 400, body: true },
      { method: 'TRACE', path: '/v1/chat/completions', status: 405, allow: 'POST' },
      { method: 'CONNECT', path: '/v1/chat/completions', status: 405, allow: 'POST' },
      { method: 'TRACE', path: '/api/tags', status: 405, allow: 'GET, HEAD' },
      { method: 'GET', path: '/v1/chat/completions', status: 405, allow: 'POST' },
      { method: 'PUT', path: '/api/chat', status: 405, allow: 'POST', body: true },
      { method: 'POST', path: '/api/tags', status: 405, allow: 'GET, HEAD', body: true },
    ];
    const answers: Answer[] = [];
    const seen = await seenBy(async () => {
      for (const c of cases)
        answers.push(
          await raw(
            gw.publicPort,
            c.body
              ? `${c.method} ${c.path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keys.operator}\r\nContent-Type: application/json\r\nContent-Length: ${chat.length}\r\nConnection: close\r\n\r\n${chat}`
              : head(c.method, c.path, keys.operator),
          ),
        );
    });
    cases.forEach((c, i) => {
      const a = answers[i]!;
      const what = `${c.method} ${c.path}`;
      expect(a.status, what).toBe(c.status);
      expect(a.headers.get('allow'), what).toBe(c.allow);
      const body = JSON.parse(a.body) as unknown;
      if (c.path.startsWith('/api/')) expect(body, what).toEqual({ error: expect.any(String) });
      else
        expect(body, what).toEqual({
          error: {
            message: expect.any(String),
            type: 'invalid_request_error',
            code: expect.stringMatching(/^(not_found|bad_request|method_not_allowed)$/),
          },
        });
    });
    expect(seen.map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });

  it('checks the path before the key: junk gets 404/400 without a credential lookup', async () => {
    const a = await raw(gw.publicPort, head('GET', '/api/nothing-here', null));
    expect(a.status).toBe(404);
    const b = await raw(gw.publicPort, head('GET', '/v1/%2e%2e/x', 'not-a-key'));
    expect(b.status).toBe(400);
  });

  it('forwards every allowed (method, path) unchanged, query included', async () => {
    const allowed: Array<[string, string, string | null]> = [
      ['POST', '/v1/chat/completions', chat],
      ['POST', '/v1/completions', JSON.stringify({ model: 'mock-model', prompt: 'x' })],
      ['POST', '/v1/embeddings', JSON.stringify({ model: 'mock-model', input: 'x' })],
      ['POST', '/v1/responses', JSON.stringify({ model: 'mock-model', input: 'x' })],
      ['POST', '/v1/moderations', JSON.stringify({ input: 'x' })],
      ['GET', '/v1/models', null],
      ['GET', '/v1/models/mock-model', null],
      ['POST', '/api/chat', JSON.stringify({ model: 'mock-model', stream: false, messages: [] })],
      ['POST', '/api/generate', JSON.stringify({ model: 'mock-model', stream: false, prompt: 'x' })],
      ['POST', '/api/embed', JSON.stringify({ model: 'mock-model', input: 'x' })],
      ['POST', '/api/embeddings', JSON.stringify({ model: 'mock-model', prompt: 'x' })],
      ['POST', '/api/show', JSON.stringify({ model: 'mock-model' })],
      ['GET', '/api/tags', null],
      ['GET', '/api/version', null],
      ['GET', '/api/ps?x=1', null],
    ];
    const seen = await seenBy(async () => {
      for (const [method, path, body] of allowed) {
        const a = await raw(gw.publicPort, body === null ? head(method, path, keys.user) : post(path, keys.user, body));
        // The mock answers what it knows and 404s the rest: either way the request got there.
        expect(a.status, path).not.toBe(0);
      }
    });
    expect(seen.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}`)).toEqual(allowed.map(([m, p]) => `${m} ${p}`));
  });
});

describe('model management (PROXY_MODEL_MANAGEMENT)', () => {
  it('is 404 while the setting is off, even for an operator', async () => {
    const seen = await seenBy(async () => {
      expect((await raw(gw.publicPort, post('/api/pull', keys.operator, '{"model":"llama3"}'))).status).toBe(404);
    });
    expect(seen).toEqual([]);
  });

  it('is 403 in the Ollama shape for a key whose owner is not an operator, and never forwarded', async () => {
    const seen = await seenBy(async () => {
      const a = await raw(managed.publicPort, post('/api/pull', keys.managedUser, '{"model":"llama3"}'));
      expect(a.status).toBe(403);
      expect(JSON.parse(a.body)).toEqual({ error: expect.stringMatching(/operator/) });
      const d = await raw(
        managed.publicPort,
        `DELETE /api/delete HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keys.managedUser}\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{"model":"llama"}`,
      );
      expect(d.status).toBe(403);
    });
    expect(seen).toEqual([]);
  });

  it("reaches the upstream for an operator's key, with its own methods (405 otherwise)", async () => {
    const seen = await seenBy(async () => {
      await raw(managed.publicPort, post('/api/pull', keys.managedOperator, '{"model":"llama3"}'));
      await raw(
        managed.publicPort,
        `DELETE /api/delete HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keys.managedOperator}\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{"model":"llama"}`,
      );
      await raw(managed.publicPort, head('HEAD', '/api/blobs/sha256:0a1b', keys.managedOperator));
      const wrong = await raw(managed.publicPort, head('GET', '/api/pull', keys.managedOperator));
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get('allow')).toBe('POST');
    });
    expect(seen.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /api/pull', 'DELETE /api/delete', 'HEAD /api/blobs/sha256:0a1b']);
    expect(seen[1]!.body.toString()).toBe('{"model":"llama"}');
  });
});

describe('forwarded headers', () => {
  const spoofed =
    'X-Forwarded-For: 6.6.6.6, 198.51.100.7\r\nForwarded: for=10.0.0.1;proto=http;host=internal\r\nX-Real-IP: 10.0.0.1\r\n' +
    'X-Forwarded-Host: internal.example\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: 80\r\nX-Original-URL: /api/delete\r\n';
  const claims = ['forwarded', 'x-real-ip', 'x-forwarded-host', 'x-forwarded-port', 'x-original-url'];

  it('from an untrusted peer the upstream sees only the peer address, whatever the client claimed', async () => {
    const [r] = await seenBy(async () => void (await raw(gw.publicPort, head('GET', '/v1/models', keys.user, spoofed))));
    expect(r!.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(r!.headers['x-forwarded-proto']).toBe('https');
    for (const name of claims) expect(r!.headers[name], name).toBeUndefined();
  });

  it('from a trusted proxy (TRUSTED_PROXIES as CIDRs) the upstream sees the chain from the client through the proxy', async () => {
    const [r] = await seenBy(async () => void (await raw(managed.publicPort, head('GET', '/v1/models', keys.managedUser, spoofed))));
    // 198.51.100.7 is the rightmost hop outside 127.0.0.0/8: the client. 6.6.6.6 was its own claim.
    expect(r!.headers['x-forwarded-for']).toBe('198.51.100.7, 127.0.0.1');
    expect(r!.headers['x-forwarded-proto']).toBe('https');
    for (const name of claims) expect(r!.headers[name], name).toBeUndefined();
  });
});

describe('request framing (RFC 9112 §6)', () => {
  it('two different Content-Length values: 400 and close, nothing forwarded', async () => {
    let a: Answer | undefined;
    const seen = await seenBy(async () => {
      const padded = `${chat}${' '.repeat(40)}`;
      a = await raw(
        gw.publicPort,
        `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keys.user}\r\nContent-Type: application/json\r\nContent-Length: ${chat.length}\r\nContent-Length: ${padded.length}\r\n\r\n${padded}`,
      );
    });
    expect(a!.status).toBe(400);
    expect(a!.headers.get('connection')).toBe('close');
    expect(a!.closed).toBe(true);
    expect(JSON.parse(a!.body)).toMatchObject({ error: { code: 'bad_request', message: expect.stringMatching(/Content-Length/) } });
    expect(seen).toEqual([]);
  });

  it('a request hidden behind the first of two lengths is never dispatched', async () => {
    // The classic smuggle: a proxy using the second length forwards one request; a server using
    // the first would see a second one, here an allowed GET carrying a valid key.
    const hidden = `GET /api/tags HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keys.user}\r\n\r\n`;
    const body = `${chat}${hidden}`;
    let a: Answer | undefined;
    const seen = await seenBy(async () => {
      a = await raw(
        gw.publicPort,
        `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keys.user}\r\nContent-Type: application/json\r\nContent-Length: ${chat.length}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
    });
    expect(a!.closed).toBe(true);
    // Either the 400 alone or nothing at all (uWS drops the connection): never a second answer.
    expect([0, 400]).toContain(a!.status);
    expect(a!.body).not.toContain('HTTP/1.1');
    expect(seen).toEqual([]);
  });

  it('the same Content-Length repeated is one length (RFC 9110 §8.6)', async () => {
    const seen = await seenBy(async () => {
      const a = await raw(gw.publicPort, post('/v1/chat/completions', keys.user, chat, `Content-Length: ${chat.length}\r\n`));
      expect(a.status).toBe(200);
    });
    expect(seen.map((r) => r.body.toString())).toEqual([chat]);
  });

  it('a Transfer-Encoding other than chunked: 400 and close, in the family shape', async () => {
    const seen = await seenBy(async () => {
      const a = await raw(
        gw.publicPort,
        `POST /api/chat HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keys.user}\r\nTransfer-Encoding: gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
      );
      expect(a.status).toBe(400);
      expect(a.headers.get('connection')).toBe('close');
      expect(a.closed).toBe(true);
      expect(JSON.parse(a.body)).toEqual({ error: expect.stringMatching(/Transfer-Encoding/) });
    });
    expect(seen).toEqual([]);
  });

  it('Content-Length with Transfer-Encoding: the connection is closed and nothing forwarded', async () => {
    // This uWS build refuses it in its parser, before any handler: it closes without an answer.
    const seen = await seenBy(async () => {
      const a = await raw(
        gw.publicPort,
        `POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keys.user}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n${chat.length.toString(16)}\r\n${chat}\r\n0\r\n\r\n`,
      );
      expect(a.closed).toBe(true);
      expect([0, 400]).toContain(a.status);
    });
    expect(seen).toEqual([]);
  });
});

describe('TRUSTED_PROXIES', () => {
  it('a value that is not an address or CIDR stops the process at boot with one line naming the variable', async () => {
    // Config is parsed before anything else is touched: no database or Redis needed to see it.
    const child = spawn(process.execPath, [fileURLToPath(new URL('../../dist/main.js', import.meta.url))], {
      env: { PATH: process.env.PATH ?? '', TRUSTED_PROXIES: '10.0.0.2, 10.0.0.0/33' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([
      'fluxgate data plane: invalid TRUSTED_PROXIES: entry 2 is not an IP address or CIDR (expected e.g. 10.0.0.2,172.16.0.0/12,fd00::/8)',
    ]);
  });
});
