/**
 * A plane as a supervised child: `node <plane>/dist/main.js` with the stack's environment, in
 * its own process group, its output passed through. Ready means it printed its one
 * machine-readable `{"event":"listening",…}` line (which names the ports it bound, so port 0 and
 * the plane's own defaults work) and its /healthz answers 200 (a data-plane worker: the shared
 * public port's and its own admin port's, workers.ts).
 */
import { spawn } from 'node:child_process';
import { lineMatching } from './lines.js';
import { httpStatus } from './probe.js';
import { describeExit, type Launch, type Unit } from './supervisor.js';

export type Listening = Record<string, unknown> & { event: 'listening' };

export interface PlaneOptions {
  name: string;
  script: string;
  env: NodeJS.ProcessEnv;
  /** The liveness URL(s), from what the plane said it listens on: every one must answer 200. */
  healthUrl(listening: Listening): string | string[];
  /** The data plane's own TLS certificate is not verified by this loopback probe (probe.ts). */
  insecureTls?: boolean;
  startTimeoutMs: number;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

const LIFELINE = new URL('./lifeline.js', import.meta.url).href;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function planeUnit(opts: PlaneOptions): Unit<Listening> {
  return {
    name: opts.name,
    role: 'plane',
    launch(): Launch<Listening> {
      // detached: its own process group, so a terminal's Ctrl-C reaches only the supervisor,
      // which stops the planes before the services they flush into.
      // The IPC channel is only a lifeline (lifeline.ts): nothing is sent over it.
      const child = spawn(process.execPath, ['--import', LIFELINE, opts.script], {
        env: opts.env,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        detached: true,
      });
      child.stdout!.pipe(opts.stdout, { end: false });
      child.stderr!.pipe(opts.stderr, { end: false });
      const deadline = Date.now() + opts.startTimeoutMs;
      const exited = new Promise<never>((_, reject) => {
        child.once('error', (err) => reject(new Error(`${opts.name} could not be started: ${err.message}`)));
        child.once('exit', (code, signal) => reject(new Error(`${opts.name} ${describeExit(code, signal)} before it was ready`)));
      });
      exited.catch(() => undefined);
      const listening = lineMatching(child.stdout!, (line) => line.startsWith('{"event":"listening"'), opts.startTimeoutMs, opts.name).then(
        (line) => {
          try {
            return JSON.parse(line) as Listening;
          } catch {
            throw new Error(`${opts.name} announced an unreadable listening line`);
          }
        },
      );
      const healthy = async (): Promise<Listening> => {
        // Its output ends as it exits: say how it exited rather than that it went quiet.
        const l = await listening.catch((err: unknown) => Promise.race([exited, sleep(2_000)]).then(() => Promise.reject(err)));
        const running = () => child.exitCode === null && child.signalCode === null;
        // Stops with the child: `exited` has already answered the race by then.
        const answers = async (url: string): Promise<void> => {
          while (running()) {
            if ((await httpStatus(url, { timeoutMs: 2_000, insecureTls: opts.insecureTls === true })) === 200) return;
            if (Date.now() > deadline) throw new Error(`${opts.name} did not answer ${url} with 200 within ${opts.startTimeoutMs} ms`);
            await sleep(200);
          }
        };
        for (const url of [opts.healthUrl(l)].flat()) await answers(url);
        if (running()) return l;
        throw new Error(`${opts.name} exited`);
      };
      return { child, ready: Promise.race([healthy(), exited]) };
    },
  };
}
