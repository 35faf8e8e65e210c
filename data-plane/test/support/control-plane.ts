/**
 * Starts the real control plane (`control-plane/dist/main.js`, built by `npm test`) as a child
 * process, for the data plane's tests of the rails that act through the guard (allowlist,
 * detector modes, grace). Always against a private redis-server: a guard on the machine's Redis
 * would act on other tests' keys.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN } from './gateway.js';

const MAIN = fileURLToPath(new URL('../../../control-plane/dist/main.js', import.meta.url));

export interface GuardProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** The guard's /healthz body (role, cycles, …). */
  health(): Promise<{ role: string; cycles: number }>;
  /** Prometheus text of /metrics. */
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export async function startGuardProcess(env: { REDIS_URL: string; DATABASE_URL: string } & Record<string, string>): Promise<GuardProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npx tsc -b\``);
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      CONTROL_PLANE_PORT: '0',
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      POLL_INTERVAL: '1',
      OLLAMA_HOST: 'http://127.0.0.1:9',
      LLM_TIMEOUT_MS: '500',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`control plane did not start within 20 s:\n${output}`)), 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`control plane exited with ${code} before listening:\n${output}`));
    });
    lines.on('line', (line) => {
      output += `${line}\n`;
      if (!line.startsWith('{"event":"listening"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    child,
    output: () => output,
    health: async () => (await (await fetch(`${url}/healthz`)).json()) as { role: string; cycles: number },
    metrics: async () => (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text(),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 8_000).unref();
      });
    },
  };
}
