import { describe, expect, it } from 'vitest';
import { formatBanner, redactUrl, type BannerInput } from './banner.js';

const REDIS_PASSWORD = '6f1d0c2b9a8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6';
const PG_PASSWORD = 'a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0';

const input = (over: Partial<BannerInput> = {}): BannerInput => ({
  publicUrl: 'https://localhost:8443',
  adminUrl: 'http://127.0.0.1:9090',
  workers: [{ pid: 4242, adminPort: 9090 }],
  controlUrl: 'http://127.0.0.1:8000',
  adminToken: { file: '/srv/fg/.fluxgate/admin-token' },
  mcpToken: { file: '/srv/fg/.fluxgate/mcp-token' },
  certificate: { path: '/srv/fg/.fluxgate/tls/localhost.crt', selfSigned: true },
  redis: { url: `redis://:${REDIS_PASSWORD}@127.0.0.1:41000`, source: 'embedded', dir: '/srv/fg/.fluxgate/redis' },
  postgres: { url: `postgres://postgres:${PG_PASSWORD}@127.0.0.1:41001/postgres`, source: 'embedded', dir: '/srv/fg/.fluxgate/pg' },
  runtimeFile: '/srv/fg/.fluxgate/runtime.json',
  upstreams: { urls: [{ url: 'http://127.0.0.1:11434/', answers: true }], fromFile: null },
  drainMs: 10_000,
  ...over,
});

describe('start banner', () => {
  it('names every URL and where each secret is, and no secret', () => {
    const text = formatBanner(input());
    for (const s of [
      'https://localhost:8443/',
      'https://localhost:8443/v1',
      'http://127.0.0.1:9090',
      'http://127.0.0.1:8000/mcp',
      'http://127.0.0.1:8000/healthz',
      '/srv/fg/.fluxgate/admin-token',
      '/srv/fg/.fluxgate/mcp-token',
      '/srv/fg/.fluxgate/tls/localhost.crt',
      'redis://:***@127.0.0.1:41000',
      'postgres://postgres:***@127.0.0.1:41001/postgres',
      'private redis-server, AOF under /srv/fg/.fluxgate/redis',
      'embedded PGlite, data under /srv/fg/.fluxgate/pg',
      'answering: http://127.0.0.1:11434/',
      'up to 10 s',
    ]) {
      expect(text).toContain(s);
    }
    expect(text).not.toContain(REDIS_PASSWORD);
    expect(text).not.toContain(PG_PASSWORD);
    expect(text).not.toContain('DOWNSTREAM_AI_URLS=');
  });

  it('says how many data-plane workers serve the public port, and that each has its own admin port to scrape', () => {
    const one = formatBanner(input());
    expect(one).toMatch(/^ {2}Data plane +1 worker \(pid 4242; DATA_PLANE_WORKERS sets how many\)$/m);
    expect(one).not.toContain('one per worker');
    const workers = [4242, 4243, 4244].map((pid, i) => ({ pid, adminPort: 9090 + i }));
    const three = formatBanner(input({ workers }));
    expect(three).toMatch(/^ {2}Data plane +3 workers sharing 8443 \(pids 4242, 4243, 4244; DATA_PLANE_WORKERS\)$/m);
    expect(three).toContain('one per worker, ports 9090–9092 (worker i on ADMIN_PORT + i): scrape each');
    // ADMIN_PORT=0: each worker bound a port of its own.
    const anyPorts = formatBanner(
      input({
        workers: [
          { pid: 1, adminPort: 41234 },
          { pid: 2, adminPort: 39001 },
        ],
      }),
    );
    expect(anyPorts).toContain('one per worker, ports 41234, 39001 (worker 0, 1, …): scrape each');
  });

  it('says how to point DOWNSTREAM_AI_URLS at a model server when none answers', () => {
    const text = formatBanner(input({ upstreams: { urls: [{ url: 'http://127.0.0.1:11434/', answers: false }], fromFile: null } }));
    expect(text).toContain('none answers at http://127.0.0.1:11434/');
    expect(text).toContain('ollama serve');
    expect(text).toMatch(/^ +DOWNSTREAM_AI_URLS=http:\/\/\S+ npm start$/m);
  });

  it('names configured secrets and services by their variables', () => {
    const text = formatBanner(
      input({
        adminToken: { variable: 'ADMIN_TOKEN' },
        mcpToken: { variable: 'MCP_TOKENS' },
        certificate: { path: '/etc/fluxgate/tls.crt', selfSigned: false },
        redis: { url: 'rediss://fluxgate:s3cr3t-Pa55@redis.internal:6380/2', source: 'configured', dir: null },
        postgres: { url: 'postgres://fg:p%40ss@db.internal/fluxgate?sslmode=require&password=leak', source: 'configured', dir: null },
      }),
    );
    expect(text).toContain('the ADMIN_TOKEN variable you set');
    expect(text).toContain('the MCP_TOKENS variable you set');
    expect(text).toContain('rediss://fluxgate:***@redis.internal:6380/2  (from REDIS_URL)');
    expect(text).toContain('postgres://fg:***@db.internal/fluxgate?…  (from DATABASE_URL)');
    expect(text).not.toMatch(/s3cr3t|p%40ss|leak/);
    expect(text).not.toContain('self-signed');
    // Built from libpq's variables instead of DATABASE_URL: it says so.
    const parts = formatBanner(
      input({ postgres: { url: 'postgres://fg:p%40ss@db:5432/fg', source: 'configured', dir: null, from: 'PGHOST, PGUSER…' } }),
    );
    expect(parts).toContain('postgres://fg:***@db:5432/fg  (from PGHOST, PGUSER…)');
  });

  it('never echoes a URL it cannot parse (it could be a secret pasted in the wrong variable)', () => {
    expect(redactUrl('not a url but a password')).toBe('(unparsable URL)');
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});
