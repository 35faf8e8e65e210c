import { connect, type TLSSocket } from 'node:tls';

/** Open a TLS connection to the gateway that accepts its self-signed certificate. */
export function openTls(port: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/**
 * Send raw bytes (exactly as given: malformed requests included) and collect everything the
 * server answers until it closes the connection or `idleMs` passes without data.
 */
export async function rawExchange(
  port: number,
  bytes: string | Buffer,
  opts: { idleMs?: number; endAfterWrite?: boolean } = {},
): Promise<string> {
  const socket = await openTls(port);
  return new Promise((resolve) => {
    let out = '';
    let timer: NodeJS.Timeout | null = null;
    const done = () => {
      if (timer) clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(done, opts.idleMs ?? 1500);
    };
    socket.on('data', (b: Buffer) => {
      out += b.toString('latin1');
      arm();
    });
    socket.once('close', done);
    socket.once('error', done);
    socket.write(bytes);
    if (opts.endAfterWrite) socket.end();
    arm();
  });
}

export const statusOf = (response: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
