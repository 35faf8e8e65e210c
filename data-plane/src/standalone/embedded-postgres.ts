/**
 * Embedded Postgres for `npm start` without DATABASE_URL: PGlite (Postgres in WASM) served over
 * the real wire protocol, so the same `postgres` driver code runs as against a real server. Runs
 * as its own process: PGlite executes queries on the thread that owns it, and the data plane's
 * event loop must never wait on that.
 *
 * pglite-socket has no authentication (every client is trusted), so the server itself listens
 * on a unix socket in a private 0700 directory, and clients reach it only through the password
 * gate (pg-auth-gate.ts, SCRAM-SHA-256) on a loopback port. The password arrives as the first
 * line on stdin, never in argv (visible to every user in `ps`) or the environment.
 *
 * Prints one JSON line `{"port":N}` on stdout once it accepts connections.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { startAuthGate } from './pg-auth-gate.js';

function readPassword(): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: process.stdin });
    lines.once('line', (line) => {
      // Settle before close(): close emits 'close' synchronously.
      resolve(line.trim());
      lines.close();
    });
    lines.once('close', () => reject(new Error('no password on stdin')));
  });
}

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  const port = Number(process.argv[3] ?? '0');
  // Connections are cheap here (each is a socket feeding PGlite's one query queue), but beyond
  // the limit a client is refused: the supervisor sizes it for every plane's pool.
  const maxConnections = Number(process.argv[4] ?? '16');
  if (!dataDir || !Number.isInteger(port) || !Number.isInteger(maxConnections) || maxConnections < 1) {
    process.stderr.write('usage: embedded-postgres <data-dir> [port] [max-connections]   (password on stdin)\n');
    process.exit(2);
  }
  const password = await readPassword();
  if (password.length < 16) throw new Error('the password on stdin must be at least 16 characters');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // A short path (unix socket paths are limited to ~104 bytes) in a directory only we can enter.
  const socketDir = await mkdtemp(join(tmpdir(), 'fg-pg-'));
  const socketPath = join(socketDir, '.s.PGSQL');
  const db = await PGlite.create({ dataDir });
  const server = new PGLiteSocketServer({ db, path: socketPath, maxConnections });
  await server.start();
  const gate = await startAuthGate({ password, host: '127.0.0.1', port, connectBackend: () => connect(socketPath), maxConnections });
  process.stdout.write(`${JSON.stringify({ port: gate.port })}\n`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await gate.close().catch(() => undefined);
    await server.stop().catch(() => undefined);
    // Closing flushes PGlite's data directory so the next start sees every committed row.
    await db.close().catch(() => undefined);
    await rm(socketDir, { recursive: true, force: true });
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
