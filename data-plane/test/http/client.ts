/**
 * Test clients for the uWS layer: a node:tls HTTP/1.1 client with a STRICT response parser (any
 * framing error fails, like curl's exit 56) that can pause reading on a condition, and curl.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, type TLSSocket } from 'node:tls';

export interface Response {
  status: number;
  headers: Map<string, string>;
  length: number;
  sha256: string;
  chunked: boolean;
  /** Raw body bytes, when `keepBody` was set. */
  body?: Buffer;
}

/** Incremental strict parser for one HTTP/1.1 response (RFC 9112 §6-7). */
class StrictParser {
  private buf = Buffer.alloc(0);
  private state: 'head' | 'size' | 'data' | 'crlf' | 'last' | 'fixed' | 'done' = 'head';
  private left = 0;
  private hash = createHash('sha256');
  private parts: Buffer[] = [];
  res: Response = { status: 0, headers: new Map(), length: 0, sha256: '', chunked: false };
  constructor(
    private readonly keepBody: boolean,
    private readonly onBody: (total: number) => void,
  ) {}

  get done(): boolean {
    return this.state === 'done';
  }

  feed(data: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    for (;;) {
      if (this.state === 'done') {
        if (this.buf.length) throw new Error(`${this.buf.length} bytes after the end of the response`);
        return;
      }
      if (this.state === 'data' || this.state === 'fixed') {
        if (!this.buf.length) return;
        const n = Math.min(this.left, this.buf.length);
        this.body(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.left -= n;
        if (this.left === 0) this.state = this.state === 'data' ? 'crlf' : 'done';
        if (this.state === 'done') this.finish();
        continue;
      }
      const eol = this.buf.indexOf(this.state === 'head' ? '\r\n\r\n' : '\r\n');
      if (eol < 0) return;
      const line = this.buf.subarray(0, eol).toString('latin1');
      this.buf = this.buf.subarray(eol + (this.state === 'head' ? 4 : 2));
      if (this.state === 'head') this.head(line);
      else if (this.state === 'crlf' || this.state === 'last') {
        if (line !== '') throw new Error(`expected CRLF after chunk data, got ${JSON.stringify(line.slice(0, 20))}`);
        if (this.state === 'last') this.finish();
        this.state = this.state === 'last' ? 'done' : 'size';
      } else {
        if (!/^[0-9a-fA-F]{1,8}$/.test(line)) throw new Error(`malformed chunk size line ${JSON.stringify(line.slice(0, 20))}`);
        this.left = parseInt(line, 16);
        this.state = this.left === 0 ? 'last' : 'data';
      }
    }
  }

  private head(text: string): void {
    const [statusLine = '', ...lines] = text.split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
    this.res.status = Number(m[1]);
    for (const l of lines) {
      const i = l.indexOf(':');
      const name = l.slice(0, i).toLowerCase();
      if (this.res.headers.has(name)) throw new Error(`duplicate header ${name}`);
      this.res.headers.set(name, l.slice(i + 1).trim());
    }
    const te = this.res.headers.get('transfer-encoding');
    const cl = this.res.headers.get('content-length');
    if (te !== undefined && cl !== undefined) throw new Error('both Transfer-Encoding and Content-Length');
    // RFC 9112 §6.3: 1xx, 204 and 304 responses end at the header block.
    if (this.res.status < 200 || this.res.status === 204 || this.res.status === 304) {
      if (te !== undefined || cl !== undefined) throw new Error(`${this.res.status} with body framing`);
      this.state = 'done';
      this.finish();
    } else if (te === 'chunked') {
      this.res.chunked = true;
      this.state = 'size';
    } else if (cl !== undefined && /^\d+$/.test(cl)) {
      this.left = Number(cl);
      this.state = this.left === 0 ? 'done' : 'fixed';
      if (this.state === 'done') this.finish();
    } else throw new Error('response without framing');
  }

  private body(b: Buffer): void {
    this.hash.update(b);
    if (this.keepBody) this.parts.push(Buffer.from(b));
    this.res.length += b.length;
    this.onBody(this.res.length);
  }

  private finish(): void {
    this.res.sha256 = this.hash.digest('hex');
    if (this.keepBody) this.res.body = Buffer.concat(this.parts);
  }
}

export interface RequestOptions {
  port: number;
  method?: string;
  path: string;
  headers?: ReadonlyArray<readonly [string, string]>;
  /** Request body parts, written one after another (raw: caller frames chunked bodies). */
  body?: ReadonlyArray<Uint8Array | string>;
  keepBody?: boolean;
  /**
   * Slow reader: stop reading when `pauseWhen(received)` holds (checked per TLS record), or
   * after every `quantum` body bytes; then wait until `resumeWhen()` holds.
   */
  pauseWhen?: (received: number) => boolean;
  quantum?: number;
  resumeWhen?: () => boolean;
  /** Destroy the connection once this many body bytes arrived; resolves with what was read. */
  abortAfter?: number;
  /**
   * After writing the request, wait until this holds, then drop the connection and resolve.
   * (Wait for the server to have seen the request: uSockets drops decrypted bytes that arrive
   * together with the peer's TLS close, so an immediate close may never reach the handler.)
   */
  abortWhen?: () => boolean;
  onBody?: (total: number) => void;
}

/** Poll a condition on the event loop (no fixed sleeps): resolves once `cond()` holds. */
export function until(cond: () => boolean, what = 'condition', timeoutMs = 30_000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (cond()) return resolve();
      if (Date.now() - start > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(check, 2);
    };
    check();
  });
}

export function request(opts: RequestOptions): Promise<Response> {
  return new Promise((resolve, reject) => {
    let nextPause = opts.quantum ?? Infinity;
    let settled = false;
    const socket: TLSSocket = connect({ host: '127.0.0.1', port: opts.port, servername: 'localhost', rejectUnauthorized: false });
    const settle = (err: Error | null) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (err) reject(err);
      else resolve(parser.res);
    };
    const parser = new StrictParser(opts.keepBody === true, (total) => {
      opts.onBody?.(total);
      if (opts.abortAfter !== undefined && total >= opts.abortAfter) return settle(null);
      const due = total >= nextPause || opts.pauseWhen?.(total) === true;
      if (due && opts.resumeWhen && !socket.isPaused()) {
        nextPause = total + (opts.quantum ?? Infinity);
        socket.pause();
        until(opts.resumeWhen, 'resume condition').then(
          () => socket.resume(),
          (e: Error) => settle(e),
        );
      }
    });
    socket.on('secureConnect', () => {
      const lines = [
        `${opts.method ?? 'GET'} ${opts.path} HTTP/1.1`,
        'host: localhost',
        ...(opts.headers ?? []).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      for (const part of opts.body ?? []) socket.write(part);
      if (opts.abortWhen)
        until(opts.abortWhen, 'abort condition').then(
          () => settle(null),
          (e: Error) => settle(e),
        );
    });
    socket.on('data', (d: Buffer) => {
      if (settled) return;
      try {
        parser.feed(d);
      } catch (e) {
        return settle(e as Error);
      }
      if (parser.done) settle(null);
    });
    socket.on('error', (e) => settle(e));
    socket.on('close', () =>
      settle(parser.done ? null : new Error(`connection closed mid-response after ${parser.res.length} body bytes`)),
    );
  });
}

export interface CurlResult {
  exitCode: number | null;
  length: number;
  sha256: string;
  stderr: string;
}

/** curl over HTTPS, verifying our test CA, reading at `rate` (curl --limit-rate syntax). */
export function curl(url: string, caPath: string, rate: string): Promise<CurlResult> {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-sS', '--http1.1', '--cacert', caPath, '--limit-rate', rate, '-o', '-', url]);
    const hash = createHash('sha256');
    let length = 0;
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      hash.update(d);
      length += d.length;
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (exitCode) => resolve({ exitCode, length, sha256: hash.digest('hex'), stderr: stderr.trim() }));
  });
}
