/**
 * The relay's per-read staging without a function per response: relays wait in one module-wide
 * queue drained by one microtask, and the heartbeat timer gets the relay as its argument. The
 * wire behaviour (byte exactness, lockstep, slow readers) is covered in test/e2e.
 */
import { describe, expect, it, vi } from 'vitest';
import type { HeaderList, ResponseSink } from '../http/types.js';
import { Relay } from './relay.js';

interface Recorded {
  started: Array<{ status: number; headers: HeaderList }>;
  writes: string[];
}

function fakeSink(): ResponseSink & Recorded {
  const started: Recorded['started'] = [];
  const writes: string[] = [];
  return {
    started,
    writes,
    aborted: false,
    get headersSent() {
      return started.length > 0;
    },
    finished: false,
    bytesWritten: 0,
    onAbort() {},
    send() {
      throw new Error('not expected');
    },
    startStream(status, headers) {
      started.push({ status, headers });
    },
    write(chunk) {
      writes.push(Buffer.from(chunk).toString());
      return true;
    },
    onDrain() {},
    end() {},
    close() {},
  };
}

class TestRelay extends Relay {
  flushes = 0;
  thrown: Array<[string, unknown]> = [];
  throwOnFlush = false;

  constructor(readonly out: ResponseSink & Recorded) {
    super(out, 'openai');
  }
  protected extraHeaders(): HeaderList {
    return [['x-request-id', 'r1']];
  }
  protected flushed(): void {
    this.flushes++;
    if (this.throwOnFlush) throw new Error('budget check failed');
  }
  protected callbackThrew(what: string, err: unknown): void {
    this.thrown.push([what, err]);
  }
  push(text: string): boolean {
    return this.stage(Buffer.from(text));
  }
  heartbeatEvery(ms: number): void {
    this.startHeartbeat(ms, 'sse');
  }
  stop(): void {
    this.stopHeartbeat();
  }
}

describe('relay staging', () => {
  it('writes what each relay staged in one turn as one write per relay, after the turn', async () => {
    const a = new TestRelay(fakeSink());
    const b = new TestRelay(fakeSink());
    a.push('data: 1\n\n');
    b.push('data: x\n\n');
    a.push('data: 2\n\n');
    expect(a.out.writes).toEqual([]);
    await Promise.resolve();
    expect(a.out.writes).toEqual(['data: 1\n\ndata: 2\n\n']);
    expect(b.out.writes).toEqual(['data: x\n\n']);
    expect([a.flushes, b.flushes]).toEqual([1, 1]);
    expect(a.bytesOut).toBe(18);
    // A later read is queued again and written on its own.
    a.push('data: 3\n\n');
    await Promise.resolve();
    expect(a.out.writes).toEqual(['data: 1\n\ndata: 2\n\n', 'data: 3\n\n']);
  });

  it('a relay whose flush throws is reported and does not keep the others from being written', async () => {
    const a = new TestRelay(fakeSink());
    const b = new TestRelay(fakeSink());
    a.throwOnFlush = true;
    a.push('one');
    b.push('two');
    await Promise.resolve();
    expect(a.thrown.map(([what, err]) => [what, (err as Error).message])).toEqual([['flush', 'budget check failed']]);
    expect(b.out.writes).toEqual(['two']);
    expect(b.thrown).toEqual([]);
  });

  it('a silent stream gets a heartbeat that first commits a 200 event stream with the gateway headers', async () => {
    const r = new TestRelay(fakeSink());
    r.heartbeatEvery(60);
    try {
      await vi.waitFor(() => expect(r.out.writes).toContain(': keep-alive\n\n'), { timeout: 5_000, interval: 20 });
    } finally {
      r.stop();
    }
    expect(r.out.started).toHaveLength(1);
    expect(r.out.started[0]!.status).toBe(200);
    expect(r.out.started[0]!.headers).toContainEqual(['content-type', 'text/event-stream']);
    expect(r.out.started[0]!.headers).toContainEqual(['x-request-id', 'r1']);
    expect(r.responseFormat).toBe('sse');
  });
});
