/**
 * No Docker engine runs here, so the compose stack is kept correct by testing its content
 * against the config schema: every variable the data plane reads is documented, every
 * variable compose sets is one the data plane knows, and the ports that must stay private do.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { dataPlaneEnvSchema } from '../../src/config/schema.js';
import { SPA_CSP, SPA_SECURITY_HEADERS } from '../../src/static/headers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (f: string) => readFileSync(`${root}${f}`, 'utf8');
interface Service {
  image?: string;
  build?: { context: string; target: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
}
const compose = parse(read('docker-compose.yml')) as { services: Record<string, Service> };
const dataPlaneVars = Object.keys(dataPlaneEnvSchema.shape);
const envExample = new Set(
  read('.env.example')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => l.split('=')[0]!),
);

describe('.env.example', () => {
  it('documents every data-plane variable with a comment line above it', () => {
    const missing = dataPlaneVars.filter((v) => v !== 'NODE_ENV' && !envExample.has(v));
    expect(missing).toEqual([]);
  });
  it('holds no secret values', () => {
    for (const secret of ['JWT_SECRET', 'ADMIN_TOKEN', 'MCP_TOKEN', 'POSTGRES_PASSWORD']) {
      expect(read('.env.example')).toMatch(new RegExp(`^${secret}=$`, 'm'));
    }
  });
});

describe('docker-compose.yml', () => {
  it('has the six services of the design', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['control-plane', 'data-plane', 'frontend', 'ollama', 'postgres', 'redis']);
  });
  it('sets only variables the data plane knows', () => {
    const unknown = Object.keys(compose.services['data-plane']!.environment!).filter((v) => !dataPlaneVars.includes(v));
    expect(unknown).toEqual([]);
  });
  it('never publishes the admin listener, and keeps MCP on loopback', () => {
    const dp = compose.services['data-plane']!;
    expect(dp.ports).toEqual(['${PUBLIC_PORT:-8443}:8443']);
    expect(JSON.stringify(compose)).not.toMatch(/9090:/);
    expect(compose.services['control-plane']!.ports!.every((p) => p.startsWith('127.0.0.1:'))).toBe(true);
  });
  it('runs Redis with AOF so incidents survive restarts, and applies init.sql to Postgres', () => {
    expect(compose.services.redis!.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
    expect(compose.services.postgres!.volumes).toContain('./init.sql:/docker-entrypoint-initdb.d/001-init.sql:ro');
  });
  it('requires every secret from .env instead of defaulting it', () => {
    const env = compose.services['data-plane']!.environment!;
    expect(env.JWT_SECRET).toMatch(/^\$\{JWT_SECRET:\?/);
    expect(env.ADMIN_TOKEN).toMatch(/^\$\{ADMIN_TOKEN:\?/);
  });
  it('builds each plane from a Dockerfile target that exists', () => {
    const dockerfile = read('Dockerfile');
    for (const s of Object.values(compose.services)) {
      if (s.build) expect(dockerfile).toMatch(new RegExp(`^FROM .+ AS ${s.build.target}$`, 'm'));
    }
  });
});

describe('Dockerfile', () => {
  it('copies only paths that exist in the repository (or were built in the build stage)', () => {
    const sources = [...read('Dockerfile').matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    for (const src of sources) expect(existsSync(`${root}${src}`), src).toBe(true);
  });
});

describe('nginx.conf', () => {
  const conf = read('nginx.conf');
  it('proxies every API path family and /health* to the data plane without buffering', () => {
    expect(conf).toContain('location ~ ^/(v1|api|portal|dns-query|healthz?|readyz)(/|$) {');
    expect(conf).toContain('proxy_buffering off;');
    expect(conf).toContain('proxy_pass https://fluxgate_data_plane;');
  });
  it('sends the data plane’s CSP and security headers for the SPA, from the server block only', () => {
    const header = (name: string) => new RegExp(`^    add_header ${name} "([^"]*)" always;$`, 'm').exec(conf)?.[1];
    expect(header('Content-Security-Policy')).toBe(SPA_CSP);
    for (const [name, value] of SPA_SECURITY_HEADERS) {
      expect(header(name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => `${dash}${c.toUpperCase()}`)), name).toBe(value);
    }
    // A location with its own add_header would silently drop the server's headers there.
    expect(conf.match(/^\s*add_header /gm)).toHaveLength(SPA_SECURITY_HEADERS.length + 1);
  });
  it('caches hashed assets for a year and never index.html; a missing asset is a 404, other paths the SPA', () => {
    expect(conf).toMatch(/~\^\/assets\/\s+"public, max-age=31536000, immutable";/);
    expect(conf).toMatch(/\/index\.html\s+"no-store";/);
    expect(conf).toMatch(/location \/assets\/ \{\s+try_files \$uri =404;/);
    expect(conf).toMatch(/location \/ \{\s+try_files \$uri \/index\.html;/);
  });
});

describe('Dockerfile frontend stage', () => {
  it('serves the built SPA, not the sources', () => {
    expect(read('Dockerfile')).toContain('COPY --from=build /app/frontend/dist /usr/share/nginx/html');
  });
});
