import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/load.js';
import { dataPlaneEnvSchema } from '../config/schema.js';
import { loadSupervisorConfig, stopTimeoutMs, supervisorEnvSchema } from './config.js';

const root = new URL('../../../', import.meta.url);
const read = (f: string): string => readFileSync(new URL(f, root), 'utf8');

describe('supervisor config', () => {
  it('has the documented defaults; the stop deadline follows the drain', () => {
    const c = loadSupervisorConfig({});
    expect(c).toMatchObject({
      CONTROL_PLANE_HOST: '127.0.0.1',
      SUPERVISOR_RESTART_DELAY_MS: 1000,
      SUPERVISOR_RESTART_MAX_DELAY_MS: 30_000,
      SUPERVISOR_RESTART_RESET_MS: 60_000,
      SUPERVISOR_START_TIMEOUT_MS: 120_000,
    });
    expect(stopTimeoutMs(c)).toBe(20_000);
    expect(stopTimeoutMs(loadSupervisorConfig({ DRAIN_TIMEOUT_MS: '30000' }))).toBe(40_000);
    expect(stopTimeoutMs(loadSupervisorConfig({ SUPERVISOR_STOP_TIMEOUT_MS: '5000' }))).toBe(5000);
    // .env.example leaves it empty: that means the default, not an error.
    expect(stopTimeoutMs(loadSupervisorConfig({ SUPERVISOR_STOP_TIMEOUT_MS: '' }))).toBe(20_000);
  });

  it("checks the data plane's variables too, naming each bad one and never its value", () => {
    let message = '';
    try {
      loadSupervisorConfig({ ADMIN_PORT: 'ninety', ADMIN_TOKEN: 'zzzzzzzzzzzzzzzzzzzzzzzz', SUPERVISOR_RESTART_DELAY_MS: '-1' });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      message = (e as Error).message;
    }
    expect(message.split('\n').map((l) => l.split(':')[0])).toEqual([
      'invalid ADMIN_PORT',
      'invalid ADMIN_TOKEN',
      'invalid SUPERVISOR_RESTART_DELAY_MS',
    ]);
    expect(message).not.toContain('zzzz');
  });

  it('runs one data-plane worker per CPU unless DATA_PLANE_WORKERS says otherwise, and refuses a count it cannot run', () => {
    expect(loadSupervisorConfig({}).DATA_PLANE_WORKERS).toBe(availableParallelism());
    expect(loadSupervisorConfig({ DATA_PLANE_WORKERS: '' }).DATA_PLANE_WORKERS).toBe(availableParallelism());
    expect(loadSupervisorConfig({ DATA_PLANE_WORKERS: '1' }).DATA_PLANE_WORKERS).toBe(1);
    expect(loadSupervisorConfig({ DATA_PLANE_WORKERS: ' 6 ' }).DATA_PLANE_WORKERS).toBe(6);
    // Admin ports are ADMIN_PORT … ADMIN_PORT + n - 1 (or all picked by the kernel with 0).
    expect(loadSupervisorConfig({ DATA_PLANE_WORKERS: '4', ADMIN_PORT: '0' }).DATA_PLANE_WORKERS).toBe(4);
    expect(loadSupervisorConfig({ DATA_PLANE_WORKERS: '4', ADMIN_PORT: '65532' }).DATA_PLANE_WORKERS).toBe(4);
    const refused = (env: Record<string, string>): string => {
      try {
        loadSupervisorConfig(env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };
    expect(refused({ DATA_PLANE_WORKERS: '0' })).toBe('invalid DATA_PLANE_WORKERS: must be at least 1');
    expect(refused({ DATA_PLANE_WORKERS: 'two' })).toBe(
      'invalid DATA_PLANE_WORKERS: expected a number of processes (or empty: one per CPU)',
    );
    expect(refused({ DATA_PLANE_WORKERS: '1.5' })).toBe('invalid DATA_PLANE_WORKERS: must be a whole number of processes');
    expect(refused({ DATA_PLANE_WORKERS: '257' })).toBe('invalid DATA_PLANE_WORKERS: must be at most 256');
    expect(refused({ DATA_PLANE_WORKERS: '4', ADMIN_PORT: '65533' })).toMatch(
      /^invalid DATA_PLANE_WORKERS: 4 workers need admin ports ADMIN_PORT … ADMIN_PORT \+ 3, beyond 65535/,
    );
  });

  it('documents each of its own variables in .env.example (with a comment above) and the README', () => {
    // The control plane's variables it also reads are documented with the control plane's.
    const own = Object.keys(supervisorEnvSchema.shape).filter(
      (k) => !(k in dataPlaneEnvSchema.shape) && (k.startsWith('SUPERVISOR_') || k === 'DATA_PLANE_WORKERS'),
    );
    expect(own.length).toBeGreaterThan(0);
    const lines = read('.env.example').split('\n');
    const readme = read('README.md');
    const undocumented = own.filter((v) => {
      const i = lines.findIndex((l) => l.startsWith(`${v}=`));
      return i < 1 || !lines.slice(Math.max(0, i - 4), i).some((l) => l.startsWith('#')) || !readme.includes(v);
    });
    expect(undocumented).toEqual([]);
  });
});
