/**
 * The supervisor's rules on real processes (tiny node scripts standing in for the planes and the
 * services, so each rule is seen in isolation; launcher.test.ts runs the real stack): a child
 * that dies is restarted, services stop only after the planes have exited, and a child that
 * ignores SIGTERM is killed at the deadline.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createSupervisor, type Unit } from '../../dist/standalone/supervisor.js';
import { waitUntil } from '../support/services.js';

const dirs: string[] = [];
afterAll(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** A child that is ready once it printed "ready"; on SIGTERM it logs, waits `termDelayMs`, logs, exits (or ignores it). */
function scriptUnit(
  name: string,
  role: 'plane' | 'service',
  log: string,
  opts: { termDelayMs?: number; ignoreTerm?: boolean } = {},
): Unit<void> {
  const code = `
    const fs = require('node:fs');
    const log = (m) => fs.appendFileSync(${JSON.stringify(log)}, ${JSON.stringify(name)} + ' ' + m + '\\n');
    process.on('SIGTERM', () => {
      log('term');
      if (${opts.ignoreTerm === true}) return;
      setTimeout(() => { log('exit'); process.exit(0); }, ${opts.termDelayMs ?? 0});
    });
    setInterval(() => {}, 1000);
    console.log('ready');`;
  return {
    name,
    role,
    launch() {
      const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
      const ready = new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (c) => reject(new Error(`${name} exited with ${c}`)));
      });
      child.stdout.resume();
      return { child, ready };
    },
  };
}

const lines: string[] = [];
const supervisorFor = (stopTimeoutMs: number) =>
  createSupervisor({
    backoff: { initialMs: 50, maxMs: 1000, resetAfterMs: 60_000 },
    stopTimeoutMs,
    serviceStopTimeoutMs: 5_000,
    say: (l) => lines.push(l),
    warn: (l) => lines.push(l),
  });

const gone = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

it('restarts a child that was killed, and says so', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-sup-'));
  dirs.push(dir);
  const sup = supervisorFor(5_000);
  const { child } = await sup.start(scriptUnit('worker', 'plane', join(dir, 'log')));
  child.kill('SIGKILL');
  await waitUntil(() => lines.some((l) => l.startsWith('fluxgate: worker is back (pid')), { timeoutMs: 10_000, message: 'no restart' });
  expect(lines).toContain(`fluxgate: worker (pid ${child.pid}) was killed by SIGKILL; restarting it in 0.1 s (attempt 1)`);
  const back = lines.find((l) => l.startsWith('fluxgate: worker is back (pid'))!;
  const newPid = Number(/pid (\d+)/.exec(back)![1]);
  expect(newPid).not.toBe(child.pid);
  expect(gone(newPid)).toBe(false);
  await sup.stop();
  expect(gone(newPid)).toBe(true);
});

it('stops the planes first and the services only after the planes have exited', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-sup-'));
  dirs.push(dir);
  const log = join(dir, 'log');
  const sup = supervisorFor(10_000);
  await sup.start(scriptUnit('redis', 'service', log));
  await sup.start(scriptUnit('plane-a', 'plane', log, { termDelayMs: 300 }));
  await sup.start(scriptUnit('plane-b', 'plane', log, { termDelayMs: 100 }));
  await sup.stop();
  const events = (await readFile(log, 'utf8')).trim().split('\n');
  expect(events.indexOf('redis term')).toBeGreaterThan(events.indexOf('plane-a exit'));
  expect(events.indexOf('redis term')).toBeGreaterThan(events.indexOf('plane-b exit'));
  expect(events.filter((e) => e.endsWith(' exit')).sort()).toEqual(['plane-a exit', 'plane-b exit', 'redis exit']);
});

it('kills a child that ignores SIGTERM once the stop deadline has passed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-sup-'));
  dirs.push(dir);
  const log = join(dir, 'log');
  const sup = supervisorFor(300);
  const stubborn = await sup.start(scriptUnit('stubborn', 'plane', log, { ignoreTerm: true }));
  const exit = new Promise<NodeJS.Signals | null>((r) => stubborn.child.once('exit', (_c, s) => r(s)));
  await sup.stop();
  expect(await exit).toBe('SIGKILL');
  expect(await readFile(log, 'utf8')).toBe('stubborn term\n');
  expect(lines).toContain(`fluxgate: stubborn (pid ${stubborn.child.pid}) did not stop within 0.3 s: killing it`);
});

it('does not restart anything once stopping, and refuses new starts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fg-sup-'));
  dirs.push(dir);
  const sup = supervisorFor(5_000);
  const { child } = await sup.start(scriptUnit('once', 'plane', join(dir, 'log')));
  const before = lines.length;
  await sup.stop();
  expect(gone(child.pid!)).toBe(true);
  expect(lines.slice(before).filter((l) => l.includes('restarting'))).toEqual([]);
  await expect(sup.start(scriptUnit('late', 'plane', join(dir, 'log')))).rejects.toThrow(/stopping/);
});
