/**
 * The proxy route's order of work, in process: what it refuses synchronously never starts the
 * body reader (uWS buffers nothing for a handler that registered no onData) and never looks a
 * key up. The wire behaviour is covered end to end in test/e2e/surface.test.ts and
 * test/e2e/refused-uploads.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../errors.js';
import type { HeaderList, RequestSnapshot, ResponseSink } from '../http/types.js';
import { createConcurrencyGate } from '../limits/concurrency.js';
import type { KeyLimits } from '../limits/key-limits.js';
import type { Logger } from '../log/logger.js';
import type { UpstreamPool } from '../proxy/types.js';
import type { RouteContext } from './context.js';
import { proxyRoute } from './proxy.js';
import type { ProxyPorts } from './proxy-ports.js';

interface Sent {
  status: number;
  headers: HeaderList;
  body: string;
}

function fakeSink(): ResponseSink & { sent: Sent[] } {
  const sent: Sent[] = [];
  let finished = false;
  return {
    sent,
    aborted: false,
    get headersSent() {
      return sent.length > 0;
    },
    get finished() {
      return finished;
    },
    bytesWritten: 0,
    onAbort() {},
    send(status, headers, body) {
      sent.push({ status, headers, body: typeof body === 'string' ? body : Buffer.from(body).toString() });
      finished = true;
    },
    startStream() {
      throw new Error('not expected');
    },
    write: () => false,
    onDrain() {},
    end() {},
    close() {},
  };
}

function setup(opts: { modelManagement?: boolean } = {}) {
  const calls = { readBody: 0, checkKey: 0, authenticate: 0, forward: 0 };
  const observed: number[] = [];
  const ports: ProxyPorts = {
    checkKey(req) {
      calls.checkKey++;
      const auth = req.headers.get('authorization');
      if (auth === undefined) throw new GatewayError('missing_api_key');
      if (auth !== 'Bearer well-formed') throw new GatewayError('invalid_api_key');
      return { hash: 'h' };
    },
    async authenticate() {
      calls.authenticate++;
      throw new GatewayError('invalid_api_key');
    },
    inspectBody: () => {
      throw new Error('not expected');
    },
    recordUsage() {},
    observe: (e) => void observed.push(e.status),
    onStreamOpen() {},
  };
  const pool = { forward: () => void calls.forward++ } as unknown as UpstreamPool;
  const log = { error() {}, warn() {}, info() {}, debug() {} } as unknown as Logger;
  const handler = proxyRoute({
    pool,
    gate: createConcurrencyGate(10),
    limits: {} as KeyLimits,
    ports,
    log,
    options: { maxBodyBytes: 1024, perKeyConcurrency: 4, heartbeatMs: 1000, modelManagement: opts.modelManagement ?? false },
  });
  const run = async (method: string, path: string, headers: Record<string, string>) => {
    const sink = fakeSink();
    const req: RequestSnapshot = {
      method,
      path,
      query: '',
      headers: new Map(Object.entries(headers)),
      remoteAddress: '192.0.2.1',
      receivedAt: performance.now(),
    };
    const ctx: RouteContext = {
      req,
      sink,
      requestId: 'r1',
      readBody: () => {
        calls.readBody++;
        return new Promise(() => {}); // the body never completes: nothing may wait for it
      },
    };
    await handler(ctx);
    return sink.sent;
  };
  return { run, calls, observed };
}

describe('proxy route: refusals come before the body and before any lookup', () => {
  it('a missing or malformed key is answered 401 without starting the body reader', async () => {
    const s = setup();
    const missing = await s.run('POST', '/v1/chat/completions', {});
    const malformed = await s.run('POST', '/api/chat', { authorization: 'Bearer not-a-key' });
    expect(missing.map((r) => r.status)).toEqual([401]);
    expect(JSON.parse(missing[0]!.body)).toMatchObject({ error: { code: 'missing_api_key' } });
    expect(malformed.map((r) => r.status)).toEqual([401]);
    expect(JSON.parse(malformed[0]!.body)).toEqual({ error: 'Invalid API key.' });
    expect(s.calls).toEqual({ readBody: 0, checkKey: 2, authenticate: 0, forward: 0 });
    expect(s.observed).toEqual([401, 401]);
  });

  it('the allow-list answers before the key is even looked at', async () => {
    const s = setup();
    const answers = [
      await s.run('DELETE', '/api/delete', { authorization: 'Bearer well-formed' }),
      await s.run('POST', '/v1/%2e%2e/x', {}),
      await s.run('TRACE', '/v1/chat/completions', {}),
    ];
    expect(answers.map((a) => a[0]!.status)).toEqual([404, 400, 405]);
    expect(answers[2]![0]!.headers).toContainEqual(['allow', 'POST']);
    expect(answers.every((a) => a[0]!.headers.some(([k, v]) => k === 'x-request-id' && v === 'r1'))).toBe(true);
    expect(s.calls).toEqual({ readBody: 0, checkKey: 0, authenticate: 0, forward: 0 });
  });

  it('a well-formed key starts the body read while it is looked up; a refusal after the lookup is answered without waiting for the body', async () => {
    const s = setup();
    const sent = await s.run('POST', '/v1/chat/completions', { authorization: 'Bearer well-formed' });
    expect(sent.map((r) => r.status)).toEqual([401]);
    expect(s.calls).toEqual({ readBody: 1, checkKey: 1, authenticate: 1, forward: 0 });
  });

  it('GET requests never read a body', async () => {
    const s = setup();
    await s.run('GET', '/v1/models', { authorization: 'Bearer well-formed' });
    expect(s.calls.readBody).toBe(0);
    expect(s.calls.authenticate).toBe(1);
  });
});
