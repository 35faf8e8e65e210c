/** Starts the built control plane (`control-plane/dist/main.js`) as a child process on port 0. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface ControlPlaneProcess {
  port: number;
  holder: string;
  url: string;
  child: ChildProcess;
  output: () => string;
  /** SIGTERM and wait (SIGKILL after 8 s). */
  stop(): Promise<number | null>;
}

export async function startControlPlane(env: Record<string, string>): Promise<ControlPlaneProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npx tsc -b\``);
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      CONTROL_PLANE_PORT: '0',
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      OLLAMA_HOST: 'http://127.0.0.1:9',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const lines = createInterface({ input: child.stdout! });
  const started = await new Promise<{ port: number; holder: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`control plane did not start within 20 s:\n${output}`)), 20_000);
    // 'close', not 'exit': by then stderr has been read to its end.
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`control plane exited with ${code} before listening:\n${output}`));
    });
    lines.on('line', (line) => {
      output += `${line}\n`;
      if (!line.startsWith('{"event":"listening"')) return;
      clearTimeout(timer);
      resolve(JSON.parse(line) as { port: number; holder: string });
    });
  });
  return {
    ...started,
    url: `http://127.0.0.1:${started.port}`,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      return new Promise<number | null>((resolve) => {
        child.once('exit', (c) => resolve(c));
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 8_000).unref();
      });
    },
  };
}
