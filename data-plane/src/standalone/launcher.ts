/**
 * `npm start`: resolve Redis and Postgres (configured, local, or embedded), then run each plane
 * as its own process with those URLs, and stop everything together.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeSecretFile } from '../bootstrap/secret-file.js';
import { resolvePostgres, resolveRedis } from './services.js';

const stateDir = process.env.FLUXGATE_STATE_DIR || '.fluxgate';
const children: ChildProcess[] = [];
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  // Planes first (they drain and flush to Redis/Postgres), services after they have exited.
  const planes = children.filter((c) => c.spawnargs.some((a) => a.endsWith('main.js')));
  const services = children.filter((c) => !planes.includes(c));
  let left = planes.filter((c) => c.exitCode === null).length;
  const stopServices = () => {
    for (const c of services) c.kill('SIGTERM');
    setTimeout(() => process.exit(code), 2_000).unref();
  };
  if (left === 0) return stopServices();
  for (const c of planes) {
    c.once('exit', () => {
      left -= 1;
      if (left === 0) stopServices();
    });
    c.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  // Always ours to create: runtime.json, the certificate and generated secrets live here even
  // when both services are configured and nothing embedded would have made it (issue 12, item 11).
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const redis = await resolveRedis(process.env.REDIS_URL || undefined, stateDir);
  if (redis.child) children.push(redis.child);
  const pg = await resolvePostgres(process.env.DATABASE_URL || undefined, stateDir);
  if (pg.child) children.push(pg.child);
  process.stderr.write(`fluxgate: redis ${redis.source}, postgres ${pg.source}\n`);

  const env = { ...process.env, REDIS_URL: redis.url, DATABASE_URL: pg.url, FLUXGATE_STATE_DIR: stateDir };
  // Operator tools (`npm run fluxgate -- keys create …`) read these while this stack runs.
  const runtimeFile = join(stateDir, 'runtime.json');
  // It holds the services' passwords: 0600 even when an older copy had a looser mode.
  await writeSecretFile(runtimeFile, `${JSON.stringify({ DATABASE_URL: pg.url, REDIS_URL: redis.url })}\n`);
  process.once('exit', () => rmSync(runtimeFile, { force: true }));
  const dataPlane = spawn(process.execPath, [fileURLToPath(new URL('../main.js', import.meta.url))], { env, stdio: 'inherit' });
  children.push(dataPlane);
  dataPlane.once('exit', (code) => stopAll(code ?? 1));
  for (const c of children) c.once('exit', () => stopAll(1));
  process.on('SIGINT', () => stopAll(0));
  process.on('SIGTERM', () => stopAll(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`fluxgate: ${err instanceof Error ? err.message : String(err)}\n`);
  stopAll(1);
  process.exitCode = 1;
});
