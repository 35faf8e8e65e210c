/**
 * Raw HTTP/1.1 over TLS for tests that must control every byte of the request (malformed heads,
 * pipelining, fuzzing) and see every byte of the answer: a parser for a sequence of responses
 * (RFC 9112 §6: Content-Length, chunked, or bodiless status) and an exchange that ends when the
 * expected responses are in, the server closes, or the connection stays silent.
 */
import { openTls } from './raw-tls.js';

export interface WireResponse {
  status: number;
  /** Lower-case names; repeated fields keep every value. */
  headers: Map<string, string[]>;
  body: Buffer;
}

export interface Parsed {
  responses: WireResponse[];
  /** Bytes after the last complete response (an incomplete one, or junk). */
  rest: Buffer;
  /** A framing error: what follows the last complete response is not an HTTP/1.1 response. */
  error: string | null;
}

const header = (r: WireResponse, name: string): string | undefined => r.headers.get(name)?.[0];

/**
 * Every complete response in `buf`, in order. Never throws: a framing error is reported.
 * `bodiless`: the responses answer HEAD requests (RFC 9110 §9.3.2: no content, whatever the
 * Content-Length says).
 */
export function parseResponses(buf: Buffer, bodiless = false): Parsed {
  const responses: WireResponse[] = [];
  let at = 0;
  for (;;) {
    if (at === buf.length) return { responses, rest: Buffer.alloc(0), error: null };
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) return { responses, rest: buf.subarray(at), error: null };
    const [statusLine = '', ...lines] = buf.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine);
    if (!m) return { responses, rest: buf.subarray(at), error: `bad status line ${JSON.stringify(statusLine.slice(0, 40))}` };
    const res: WireResponse = { status: Number(m[1]), headers: new Map(), body: Buffer.alloc(0) };
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) return { responses, rest: buf.subarray(at), error: `bad header line ${JSON.stringify(line.slice(0, 40))}` };
      const name = line.slice(0, colon).toLowerCase();
      res.headers.set(name, [...(res.headers.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    let p = end + 4;
    const te = header(res, 'transfer-encoding');
    const cl = header(res, 'content-length');
    if (te !== undefined && cl !== undefined)
      return { responses, rest: buf.subarray(at), error: 'both Transfer-Encoding and Content-Length' };
    if (bodiless || res.status < 200 || res.status === 204 || res.status === 304) {
      // RFC 9112 §6.3: ends at the header block.
    } else if (te !== undefined) {
      if (te.toLowerCase() !== 'chunked') return { responses, rest: buf.subarray(at), error: `transfer-encoding ${te}` };
      const parts: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', p);
        if (eol < 0) return { responses, rest: buf.subarray(at), error: null };
        const sizeLine = buf.subarray(p, eol).toString('latin1');
        if (!/^[0-9a-fA-F]{1,8}$/.test(sizeLine))
          return { responses, rest: buf.subarray(at), error: `bad chunk size ${JSON.stringify(sizeLine.slice(0, 20))}` };
        const size = parseInt(sizeLine, 16);
        p = eol + 2;
        if (buf.length < p + size + 2) return { responses, rest: buf.subarray(at), error: null };
        if (buf[p + size] !== 0x0d || buf[p + size + 1] !== 0x0a)
          return { responses, rest: buf.subarray(at), error: 'chunk data not followed by CRLF' };
        parts.push(buf.subarray(p, p + size));
        p += size + 2;
        if (size === 0) break;
      }
      res.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) return { responses, rest: buf.subarray(at), error: `content-length ${cl}` };
      const n = Number(cl);
      if (buf.length < p + n) return { responses, rest: buf.subarray(at), error: null };
      res.body = buf.subarray(p, p + n);
      p += n;
    } else {
      return { responses, rest: buf.subarray(at), error: 'response without framing' };
    }
    responses.push(res);
    at = p;
  }
}

export interface WireExchange extends Parsed {
  /** The server closed the connection (or reset it). */
  closed: boolean;
  /** The exchange ended because nothing arrived for `idleMs` (the server holds the connection). */
  idle: boolean;
  /** From the last request byte written to the end of the exchange. */
  elapsedMs: number;
  raw: Buffer;
}

export interface WireOptions {
  /** Stop once this many complete responses arrived (the connection is then dropped by us). */
  responses?: number;
  /** Stop when the connection has been silent this long (default 1,500 ms). */
  idleMs?: number;
  /** Write each part separately (e.g. to split a request across TLS records). */
  parts?: ReadonlyArray<string | Buffer>;
  /** The request is a HEAD: responses carry no content. */
  head?: boolean;
}

/**
 * Open a TLS connection, write `bytes` exactly (latin1 for strings, so any byte can be sent),
 * and collect the answer until `responses` complete responses arrived, the server closed, or
 * `idleMs` of silence. The connection is always destroyed afterwards.
 */
export async function wireExchange(port: number, bytes: string | Buffer, opts: WireOptions = {}): Promise<WireExchange> {
  const socket = await openTls(port);
  socket.on('error', () => undefined);
  const chunks: Buffer[] = [];
  const parts = opts.parts ?? [bytes];
  let sentAt = performance.now();
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (closed: boolean, idle: boolean) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      socket.destroy();
      const raw = Buffer.concat(chunks);
      resolve({ ...parseResponses(raw, opts.head), closed, idle, elapsedMs: performance.now() - sentAt, raw });
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => finish(false, true), opts.idleMs ?? 1_500);
    };
    socket.on('data', (b: Buffer) => {
      chunks.push(b);
      arm();
      // Interim (1xx) responses do not count: only final ones answer a request.
      if (opts.responses !== undefined && finals(parseResponses(Buffer.concat(chunks), opts.head).responses).length >= opts.responses)
        finish(false, false);
    });
    socket.once('close', () => finish(true, false));
    const write = (i: number): void => {
      const part = parts[i];
      if (part === undefined) {
        sentAt = performance.now();
        arm();
        return;
      }
      socket.write(typeof part === 'string' ? Buffer.from(part, 'latin1') : part, () => write(i + 1));
    };
    write(0);
  });
}

export const headerOf = header;

/** Final (non-1xx) responses. */
export const finals = (responses: readonly WireResponse[]): WireResponse[] => responses.filter((r) => r.status >= 200);

/**
 * Requests one after another on one TLS connection, each written once the previous one's
 * final response is complete (keep-alive, no pipelining). Stops early when the server closes
 * or stays silent for `idleMs`. `heads[i]` marks HEAD requests (bodiless answers).
 */
export async function wireConversation(
  port: number,
  requests: readonly string[],
  opts: { idleMs?: number; heads?: readonly boolean[] } = {},
): Promise<{ answers: WireResponse[]; closed: boolean; error: string | null }> {
  const socket = await openTls(port);
  socket.on('error', () => undefined);
  const answers: WireResponse[] = [];
  let buf: Buffer = Buffer.alloc(0);
  let closed = false;
  let error: string | null = null;
  socket.on('close', () => (closed = true));
  try {
    for (let i = 0; i < requests.length; i++) {
      socket.write(Buffer.from(requests[i]!, 'latin1'));
      const got = await new Promise<WireResponse | null>((resolve) => {
        const check = (): boolean => {
          const parsed = parseResponses(buf, opts.heads?.[i] === true);
          const final = finals(parsed.responses)[0];
          if (parsed.error !== null) error = parsed.error;
          if (final === undefined && error === null && !closed) return false;
          socket.off('data', onData);
          socket.off('close', onClose);
          clearTimeout(timer);
          if (final !== undefined) {
            // Keep what follows this response for the next one.
            const end = parseResponses(buf, opts.heads?.[i] === true);
            buf = end.rest;
          }
          resolve(final ?? null);
          return true;
        };
        const onData = (b: Buffer) => {
          buf = Buffer.concat([buf, b]);
          check();
        };
        const onClose = () => check();
        const timer = setTimeout(() => {
          socket.off('data', onData);
          socket.off('close', onClose);
          resolve(null);
        }, opts.idleMs ?? 5_000);
        socket.on('data', onData);
        socket.on('close', onClose);
        check();
      });
      if (got === null) break;
      answers.push(got);
    }
  } finally {
    socket.destroy();
  }
  return { answers, closed, error };
}
