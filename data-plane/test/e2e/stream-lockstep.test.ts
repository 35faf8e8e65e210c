/**
 * "Each chunk reaches the client as it arrives", proven by structure rather than timing (issue
 * 12, item 13): a model server that sends one SSE event and then waits until the test's client,
 * reading the gateway over raw TLS, has received that event before it produces the next. If the
 * gateway held any event back (buffering for more bytes, coalescing, waiting for the end), the
 * exchange would stall at that event and the test names it. The client also counts its socket
 * reads: no read may carry two events, and every event costs at least one.
 */
import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcessGateway, type InProcessGateway } from '../support/in-process.js';
import { openTls } from '../support/raw-tls.js';
import { waitUntil } from '../support/services.js';

const EVENTS = 20;

const event = (i: number) =>
  `data: ${JSON.stringify({ id: 'chatcmpl-lockstep', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'lockstep', choices: [{ index: 0, delta: { content: `tok-${i}.` }, finish_reason: null }] })}\n\n`;

/** An OpenAI-compatible SSE server whose next event waits for `release()`. */
class LockstepUpstream {
  server: Server;
  produced = 0;
  private waiter: (() => void) | null = null;
  private released = 0;

  constructor() {
    this.server = createServer((req, res) => {
      req.resume();
      // Health probes and anything else get a plain answer; only the completion is in lockstep.
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return void res.end('ok');
      req.on('end', () => void this.stream(res));
    });
  }

  /** Let the upstream produce event number `n` (0-based). */
  release(n: number): void {
    this.released = n + 1;
    this.waiter?.();
  }

  private async stream(res: ServerResponse): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    for (let i = 0; i < EVENTS; i++) {
      while (this.released <= i) await new Promise<void>((r) => (this.waiter = r));
      this.waiter = null;
      res.write(event(i));
      this.produced = i + 1;
    }
    res.end('data: [DONE]\n\n');
  }
}

let upstream: LockstepUpstream;
let gw: InProcessGateway;
let key: string;

beforeAll(async () => {
  upstream = new LockstepUpstream();
  upstream.server.listen(0, '127.0.0.1');
  await once(upstream.server, 'listening');
  // Heartbeats off the path: only the upstream's events may reach the client.
  gw = await startInProcessGateway({
    upstreams: `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}`,
    env: { SSE_HEARTBEAT_MS: '600000' },
  });
  key = (await gw.issueKey(undefined, 'enterprise')).secret;
});
afterAll(async () => {
  await gw?.stop();
  upstream?.server.closeAllConnections();
  upstream?.server.close();
});

describe('streaming, structurally', () => {
  it('delivers each SSE event to the client before the upstream produces the next one', async () => {
    const socket = await openTls(gw.publicPort);
    const reads: string[] = [];
    let received = '';
    socket.on('data', (b: Buffer) => {
      reads.push(b.toString('latin1'));
      received += b.toString('latin1');
    });
    const body = JSON.stringify({ model: 'lockstep', stream: true, messages: [{ role: 'user', content: 'go' }] });
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: gw.example\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );

    const readsPerEvent: number[] = [];
    let readsBefore = 0;
    for (let i = 0; i < EVENTS; i++) {
      upstream.release(i);
      await waitUntil(() => received.includes(`tok-${i}.`), {
        timeoutMs: 10_000,
        message: `event ${i} reached the client while the upstream waits for it (the gateway held it back)`,
      });
      // Nothing of the next event can exist yet: the upstream has not been allowed to write it.
      expect(upstream.produced).toBe(i + 1);
      readsPerEvent.push(reads.length - readsBefore);
      readsBefore = reads.length;
    }
    upstream.release(EVENTS);
    await waitUntil(() => received.endsWith('\r\n0\r\n\r\n'), { timeoutMs: 10_000, message: 'the stream ended' });
    socket.destroy();

    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    expect(received).toContain('data: [DONE]');
    expect(readsPerEvent.every((n) => n >= 1)).toBe(true);
    for (const read of reads) expect((read.match(/tok-\d+\./g) ?? []).length).toBeLessThanOrEqual(1);
  });
});
