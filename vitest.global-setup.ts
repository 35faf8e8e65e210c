/**
 * Global setup of the integration project: `tsc -b` once before any file runs, so the tests that
 * still spawn `data-plane/dist/main.js` (or the launcher, the CLI, the control plane) never run a
 * build older than the source when vitest is started directly instead of through `npm test`.
 * Incremental: about a second when dist/ is current. A type error fails the run here, loudly.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('.', import.meta.url));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const started = performance.now();
  const run = spawnSync(process.execPath, [tsc, '-b'], { cwd: root, encoding: 'utf8' });
  if (run.status !== 0) {
    throw new Error(
      `tsc -b failed (exit ${run.status ?? run.signal}): the spawned tests would run a stale dist/\n${run.stdout}${run.stderr}`,
    );
  }
  const ms = performance.now() - started;
  if (ms > 5_000) process.stderr.write(`integration global setup: tsc -b rebuilt dist/ in ${(ms / 1000).toFixed(1)} s\n`);
}
