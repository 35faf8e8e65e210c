/**
 * Runs the built supervisor (`data-plane/dist/standalone/launcher.js`, what `npm start` runs
 * after building) as a real process for the launcher tests, and finds every process that belongs
 * to one run: each carries that run's unique FLUXGATE_STATE_DIR in its environment, children and
 * their children alike, even after the supervisor has gone and they were re-parented.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { waitUntil } from '../support/services.js';

export const LAUNCHER = fileURLToPath(new URL('../../dist/standalone/launcher.js', import.meta.url));

export interface StackProcess {
  child: ChildProcess;
  /** stdout and stderr as read so far. */
  output(): string;
  stdout(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Waits for the `nth` (default: first) match of `re` in the output. */
  waitFor(re: RegExp, opts?: { timeoutMs?: number; nth?: number }): Promise<RegExpMatchArray>;
}

/** The launcher with `env`; or, with `shell`, that command line run by `sh -c` in `cwd`, as npm runs a script. */
export function startStack(env: Record<string, string>, opts: { shell?: string; cwd?: string } = {}): StackProcess {
  const [command, args] = opts.shell === undefined ? [process.execPath, [LAUNCHER]] : ['/bin/sh', ['-c', opts.shell]];
  const child = spawn(command, args, { env: { PATH: process.env.PATH ?? '', ...env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let all = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
    all += b.toString();
  });
  child.stderr!.on('data', (b: Buffer) => (all += b.toString()));
  // 'close' once its output is read to the end; bounded, because whatever it leaves running may
  // hold that output open (a shell that dies leaves its children, and their copy of the pipe).
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      const timer = setTimeout(resolve, 5_000, code);
      void closed.then(() => {
        clearTimeout(timer);
        resolve(code);
      });
    }),
  );
  return {
    child,
    output: () => all,
    stdout: () => out,
    exited,
    async waitFor(re, opts = {}) {
      const global = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
      const nth = opts.nth ?? 1;
      let done = false;
      void exited.then(() => (done = true));
      return waitUntil(
        () => {
          const matches = [...all.matchAll(global)];
          if (matches.length >= nth) return matches[nth - 1]!;
          if (done) throw new Error(`the supervisor exited before printing ${re}:\n${all}`);
          return null;
        },
        { timeoutMs: opts.timeoutMs ?? 90_000, intervalMs: 100, message: `no ${re} in the supervisor's output:\n${all}` },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n--- output ---\n${all}`);
      });
    },
  };
}

/** Live processes whose environment has `FLUXGATE_STATE_DIR=<stateDir>` (zombies have none). */
export async function processesOf(stateDir: string): Promise<number[]> {
  const marker = `\0FLUXGATE_STATE_DIR=${stateDir}\0`;
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'latin1').catch(() => '');
    if (`\0${environ}`.includes(marker)) pids.push(Number(entry));
  }
  return pids;
}

export async function environOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/environ`, 'latin1')).split('\0');
}
