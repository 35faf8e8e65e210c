/** Drives an UpstreamPool the way a route does, recording everything the handler sees. */
import type { GatewayError } from '../../src/errors.js';
import type { HeaderList } from '../../src/http/types.js';
import type { ForwardControl, ForwardHandler, ForwardRequest, UpstreamPool } from '../../src/proxy/types.js';

export interface Outcome {
  status: number | null;
  headers: HeaderList;
  upstream: string | null;
  contentLength: number | null;
  body: Buffer;
  chunks: number;
  error: GatewayError | null;
  /** `started` as passed to onError. */
  startedAtError: boolean | null;
  /** onError/onComplete calls in total (must be 1). */
  endings: number;
}

export interface Forwarded {
  control: ForwardControl;
  abort: AbortController;
  /** Resolves at onResponseStart (never rejects; stays pending if the exchange fails first). */
  started: Promise<void>;
  /** Resolves at the first body chunk. */
  firstChunk: Promise<void>;
  done: Promise<Outcome>;
}

export interface ForwardOptions {
  /** Return false to pause; default true. Called after the chunk was recorded. */
  onData?: (chunk: Buffer, control: ForwardControl) => boolean;
}

export function chatBody(extra: Record<string, unknown> = {}): Uint8Array {
  return Buffer.from(JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'Say hello' }], ...extra }));
}

export function makeRequest(over: Partial<ForwardRequest> & { signal: AbortSignal }): ForwardRequest {
  return {
    method: 'POST',
    path: '/v1/chat/completions',
    query: '',
    headers: new Map([['content-type', 'application/json']]),
    body: chatBody(),
    model: 'mock-model',
    ...over,
  };
}

export function forward(pool: UpstreamPool, over: Partial<ForwardRequest> = {}, opts: ForwardOptions = {}): Forwarded {
  const abort = new AbortController();
  const req = makeRequest({ signal: abort.signal, ...over });
  const out: Outcome = {
    status: null,
    headers: [],
    upstream: null,
    contentLength: null,
    body: Buffer.alloc(0),
    chunks: 0,
    error: null,
    startedAtError: null,
    endings: 0,
  };
  const parts: Buffer[] = [];
  let resolveDone!: (o: Outcome) => void;
  let resolveStarted!: () => void;
  let resolveFirst!: () => void;
  const done = new Promise<Outcome>((r) => (resolveDone = r));
  const started = new Promise<void>((r) => (resolveStarted = r));
  const firstChunk = new Promise<void>((r) => (resolveFirst = r));
  const finish = (): void => {
    out.body = Buffer.concat(parts);
    resolveDone(out);
  };
  let control: ForwardControl | null = null;
  const handler: ForwardHandler = {
    onResponseStart(status, headers, upstream, contentLength) {
      Object.assign(out, { status, headers, upstream, contentLength });
      resolveStarted();
    },
    onData(chunk) {
      parts.push(Buffer.from(chunk));
      out.chunks++;
      resolveFirst();
      return opts.onData === undefined || control === null ? true : opts.onData(Buffer.from(chunk), control);
    },
    onComplete() {
      out.endings++;
      // A second ending would be a bug; let the test see it before resolving.
      queueMicrotask(finish);
    },
    onError(err, startedFlag) {
      out.endings++;
      out.error = err;
      out.startedAtError = startedFlag;
      queueMicrotask(finish);
    },
  };
  control = pool.forward(req, handler);
  return { control, abort, started, firstChunk, done };
}

export function header(headers: HeaderList, name: string): string[] {
  return headers.filter(([n]) => n === name).map(([, v]) => v);
}
