import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const UWS = fileURLToPath(new URL('../../dist/http/uws.js', import.meta.url));

describe('uWebSockets.js loading', () => {
  it('loads the native binary on this Node', async () => {
    const { stdout } = await run(process.execPath, [
      '--input-type=module',
      '-e',
      `import { loadUws } from '${UWS}'; const u = loadUws(); console.log(typeof u.SSLApp, typeof u.us_socket_local_port);`,
    ]);
    expect(stdout.trim()).toBe('function function');
  });

  it('refuses to run instead of falling back to the JS implementation when no binary matches', async () => {
    // Pretend to be a Node ABI this uWS build ships no binary for.
    const script = `Object.defineProperty(process, 'versions', { value: { ...process.versions, modules: '999' } });
      const { loadUws } = await import('${UWS}');
      try { loadUws(); console.log('LOADED'); } catch (e) { console.log('REFUSED ' + e.message); }`;
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(stdout).toMatch(/^REFUSED Cannot load the uWebSockets\.js native binary .*_999\.node/);
    expect(stdout).toContain("never uses uWS's slow JS fallback");
    expect(stderr).not.toMatch(/Falling back/);
  });
});
