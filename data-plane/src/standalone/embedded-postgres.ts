/**
 * Embedded Postgres for `npm start` without DATABASE_URL: PGlite (Postgres in WASM) served over
 * the real wire protocol on a private loopback port, so the same `postgres` driver code runs as
 * against a real server. Runs as its own process: PGlite executes queries on the thread that
 * owns it, and the data plane's event loop must never wait on that.
 *
 * Prints one JSON line `{"port":N}` on stdout once it accepts connections.
 */
import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  const port = Number(process.argv[3] ?? '0');
  if (!dataDir || !Number.isInteger(port)) {
    process.stderr.write('usage: embedded-postgres <data-dir> [port]\n');
    process.exit(2);
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create({ dataDir });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 16 });
  await server.start();
  // getServerConn() is "host:port" once listening (port 0 resolved to the real one).
  const actualPort = Number(server.getServerConn().split(':').pop());
  process.stdout.write(`${JSON.stringify({ port: actualPort })}\n`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.stop().catch(() => undefined);
    // Closing flushes PGlite's data directory so the next start sees every committed row.
    await db.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  process.on('disconnect', () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`embedded postgres failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
