import { createServer, type Server, type Socket } from 'node:net';
import { ScramExchange, scramVerifier } from './scram.js';

/**
 * A password in front of the embedded Postgres. pglite-socket answers every startup message
 * with AuthenticationOk (PGlite runs as a single trusted user and the socket server has no
 * authentication option), so anyone on the machine who finds its port could read and change
 * every account and key. This gate listens on loopback, runs the Postgres SASL exchange
 * (SCRAM-SHA-256) itself, and only then relays the client's startup message and everything
 * after it to the real server, which listens on a unix socket in a 0700 directory.
 *
 * Wire format: Postgres docs, "Frontend/Backend Protocol" (message flow, message formats).
 */

const PROTOCOL_3_0 = 196_608;
const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;
const CANCEL_REQUEST = 80_877_102;
/** Startup and SASL messages are small; anything bigger before authentication is an attack. */
const MAX_PRE_AUTH_BYTES = 16 * 1024;

export interface AuthGateOptions {
  password: string;
  host: string;
  port: number;
  /** Connects to the real server (only after a client authenticated). */
  connectBackend: () => Socket;
  maxConnections?: number;
  /** A client that has not authenticated by then is dropped (Postgres: authentication_timeout). */
  authTimeoutMs?: number;
}

export interface AuthGate {
  port: number;
  close(): Promise<void>;
}

function authRequest(code: number, data = ''): Buffer {
  const body = Buffer.from(data, 'utf8');
  const msg = Buffer.alloc(1 + 4 + 4 + body.length);
  msg.write('R', 0);
  msg.writeInt32BE(8 + body.length, 1);
  msg.writeInt32BE(code, 5);
  body.copy(msg, 9);
  return msg;
}

/** ErrorResponse with severity FATAL, then the connection ends. */
function fatal(socket: Socket, sqlState: string, message: string): void {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${sqlState}\0M${message}\0\0`, 'utf8');
  const msg = Buffer.alloc(5 + fields.length);
  msg.write('E', 0);
  msg.writeInt32BE(4 + fields.length, 1);
  fields.copy(msg, 5);
  socket.end(msg);
}

/** The payload of a SASLInitialResponse: mechanism, then the client-first message. */
function saslInitial(body: Buffer): { mechanism: string; response: string } | null {
  const nul = body.indexOf(0);
  if (nul < 0 || nul + 5 > body.length) return null;
  const length = body.readInt32BE(nul + 1);
  if (length < 0 || nul + 5 + length !== body.length) return null;
  return { mechanism: body.toString('utf8', 0, nul), response: body.toString('utf8', nul + 5) };
}

export function startAuthGate(opts: AuthGateOptions): Promise<AuthGate> {
  const verifier = scramVerifier(opts.password);
  const sockets = new Set<Socket>();

  const handle = (client: Socket): void => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const timer = setTimeout(() => client.destroy(), opts.authTimeoutMs ?? 10_000);
    const scram = new ScramExchange(verifier);
    let phase: 'startup' | 'initial' | 'final' = 'startup';
    let startup: Buffer | null = null;
    let buf = Buffer.alloc(0);

    const refuse = (sqlState: string, message: string) => {
      clearTimeout(timer);
      client.removeListener('data', onData);
      fatal(client, sqlState, message);
    };

    const relay = (rest: Buffer) => {
      clearTimeout(timer);
      client.removeListener('data', onData);
      client.pause();
      const backend = opts.connectBackend();
      backend.on('error', () => {
        if (client.writable) fatal(client, '57P03', 'the embedded database is not available');
        backend.destroy();
      });
      backend.once('connect', () => {
        backend.write(startup!);
        if (rest.length > 0) backend.write(rest);
        client.pipe(backend).pipe(client);
        client.resume();
      });
      client.once('close', () => backend.destroy());
      backend.once('close', () => client.destroy());
    };

    function onData(chunk: Buffer): void {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > MAX_PRE_AUTH_BYTES) return refuse('08P01', 'message too large before authentication');
      for (;;) {
        if (phase === 'startup') {
          if (buf.length < 8) return;
          const length = buf.readInt32BE(0);
          if (length < 8 || length > MAX_PRE_AUTH_BYTES) return refuse('08P01', 'invalid startup packet length');
          if (buf.length < length) return;
          const code = buf.readInt32BE(4);
          const packet = buf.subarray(0, length);
          buf = buf.subarray(length);
          // No TLS or GSS encryption on a loopback port: say so, and the client goes on in plain.
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            client.write('N');
            continue;
          }
          if (code === CANCEL_REQUEST) return refuse('0A000', 'cancel requests are not supported');
          if (code !== PROTOCOL_3_0) return refuse('08P01', 'unsupported frontend protocol');
          startup = Buffer.from(packet);
          phase = 'initial';
          client.write(authRequest(10, 'SCRAM-SHA-256\0\0'));
          continue;
        }
        // SASLInitialResponse / SASLResponse: 'p', int32 length, payload.
        if (buf.length < 5) return;
        const length = buf.readInt32BE(1);
        if (buf[0] !== 0x70 || length < 4) return refuse('08P01', 'expected a password message');
        if (buf.length < 1 + length) return;
        const body = buf.subarray(5, 1 + length);
        buf = buf.subarray(1 + length);
        if (phase === 'initial') {
          const initial = saslInitial(body);
          if (!initial || initial.mechanism !== 'SCRAM-SHA-256') return refuse('28000', 'only SCRAM-SHA-256 authentication is accepted');
          const step = scram.first(initial.response);
          if (!step.ok) return refuse('08P01', step.reason);
          phase = 'final';
          client.write(authRequest(11, step.reply));
          continue;
        }
        const step = scram.final(body.toString('utf8'));
        if (!step.ok) return refuse('28P01', 'password authentication failed');
        client.write(authRequest(12, step.reply));
        return relay(buf);
      }
    }
    client.on('data', onData);
  };

  return new Promise((resolve, reject) => {
    const server: Server = createServer(handle);
    server.maxConnections = opts.maxConnections ?? 64;
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      const addr = server.address();
      resolve({
        port: typeof addr === 'object' && addr ? addr.port : opts.port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
