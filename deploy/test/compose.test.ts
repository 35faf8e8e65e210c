/**
 * No Docker engine runs here, so the compose stack is kept correct by testing its content
 * against both planes' config schemas: every variable a Fluxgate service sets is one its plane
 * reads, the environment as compose would hand it over parses with the real config loaders,
 * ports and healthchecks agree with the config defaults, no secret is written in the file, and
 * nothing is published beyond what the README says (the admin listener never).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { controlPlaneEnvSchema } from '../../control-plane/src/config/schema.js';
import { loadConfig as loadControlPlaneConfig } from '../../control-plane/src/config/load.js';
import { adminTlsEnabled } from '../../data-plane/src/config/admin-listener.js';
import { loadConfig as loadDataPlaneConfig } from '../../data-plane/src/config/load.js';
import { dataPlaneEnvSchema } from '../../data-plane/src/config/schema.js';
import { TLS12_CIPHERS } from '../../data-plane/src/http/uws.js';
import { SPA_CSP, SPA_SECURITY_HEADERS } from '../../data-plane/src/static/headers.js';
import { compose, interpolate, isSecretName, publishedInReadme, read, type Service } from './support.js';

const services = compose.services;
const ours = (target: string) => Object.entries(services).filter(([, s]) => s.build?.target === target);
const schemaOf: Record<string, readonly string[]> = {
  'data-plane': Object.keys(dataPlaneEnvSchema.shape),
  'control-plane': Object.keys(controlPlaneEnvSchema.shape),
};
const dpDefaults = loadDataPlaneConfig({});
const cpDefaults = loadControlPlaneConfig({});

/** What `docker compose` would put in the container's environment, with the secrets .env must give. */
const FAKE_SECRETS: Record<string, string> = {
  POSTGRES_PASSWORD: 'p@ss:w/o%rd#?x',
  REDIS_PASSWORD: 'r3dis@:/%#?',
  JWT_SECRET: randomBytes(32).toString('base64url'),
  ADMIN_TOKEN: randomBytes(24).toString('base64url'),
  MCP_TOKEN: randomBytes(32).toString('base64url'),
};
const environmentOf = (s: Service) =>
  Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v), FAKE_SECRETS)]));

/** Port from a healthcheck command that names one (`port:8443`, `/dev/tcp/127.0.0.1/8443`, `:9090/`). */
const healthPort = (s: Service): number => {
  const test = (s.healthcheck?.test ?? []).join(' ');
  const m = /port:(\d+)|\/dev\/tcp\/[^/]+\/(\d+)|127\.0\.0\.1:(\d+)/.exec(test);
  return Number(m?.[1] ?? m?.[2] ?? m?.[3]);
};

describe('docker-compose.yml', () => {
  it('has the services of the design, each Fluxgate one built from a Dockerfile target that exists', () => {
    expect(Object.keys(services).sort()).toEqual([
      'control-plane',
      'data-plane',
      'frontend',
      'frontend-cert',
      'ollama',
      'ollama-pull',
      'postgres',
      'prometheus',
      'redis',
    ]);
    const dockerfile = read('Dockerfile');
    for (const s of Object.values(services)) if (s.build) expect(dockerfile).toMatch(new RegExp(`^FROM .+ AS ${s.build.target}$`, 'm'));
  });

  it('sets only variables the plane reads (its config schema)', () => {
    for (const target of ['data-plane', 'control-plane']) {
      for (const [name, s] of ours(target)) {
        const unknown = Object.keys(s.environment ?? {}).filter((v) => !schemaOf[target]!.includes(v));
        expect(unknown, name).toEqual([]);
      }
    }
  });

  it('hands each plane an environment its real config loader accepts (admin TLS off loopback, URLs from parts)', () => {
    const dp = loadDataPlaneConfig(environmentOf(services['data-plane']!));
    expect(dp.ADMIN_HOST).toBe('0.0.0.0');
    expect(adminTlsEnabled(dp)).toBe(true);
    expect(dp.NODE_ENV).toBe('production');
    // The password with URL delimiters arrives intact inside the URL the plane builds.
    expect(decodeURIComponent(new URL(dp.DATABASE_URL!).password)).toBe(FAKE_SECRETS.POSTGRES_PASSWORD);
    expect(decodeURIComponent(new URL(dp.REDIS_URL!).password)).toBe(FAKE_SECRETS.REDIS_PASSWORD);
    expect(new URL(dp.DATABASE_URL!).host).toBe('postgres:5432');
    const cp = loadControlPlaneConfig(environmentOf(services['control-plane']!));
    expect(decodeURIComponent(new URL(cp.DATABASE_URL!).password)).toBe(FAKE_SECRETS.POSTGRES_PASSWORD);
    expect(decodeURIComponent(new URL(cp.REDIS_URL!).password)).toBe(FAKE_SECRETS.REDIS_PASSWORD);
    // Both planes agree on the rails they share.
    expect(cp.MCP_MAX_PENALTY).toBe(dp.MCP_MAX_PENALTY);
    expect(cp.GUARD_PARDON_GRACE_SECONDS).toBe(dp.GUARD_PARDON_GRACE_SECONDS);
    expect(cp.LLM_MODEL).toBe(cpDefaults.LLM_MODEL);
  });

  it('writes no secret: each secret-named variable is a required ${VAR:?…} reference, and Redis takes its password from the environment', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (isSecretName(key)) expect(String(value), `${name}.${key}`).toMatch(/^\$\{[A-Z_]+:\?[^}]+\}$/);
      }
    }
    const text = read('docker-compose.yml');
    for (const fake of Object.values(FAKE_SECRETS)) expect(text).not.toContain(fake);
    expect(services.redis!.command!.join(' ')).toContain('--requirepass "$$REDIS_PASSWORD"');
    expect(compose.secrets).toEqual({ 'admin-token': { environment: 'ADMIN_TOKEN' } });
  });

  it('publishes exactly what the README lists, the frontend’s TLS port and MCP on loopback, and never the admin listener', () => {
    const published = Object.entries(services).flatMap(([, s]) => s.ports ?? []);
    expect(published.sort()).toEqual(publishedInReadme().sort());
    expect(services.frontend!.ports).toEqual(['${FRONTEND_PORT:-8443}:8443']);
    for (const p of services['control-plane']!.ports ?? []) expect(p).toMatch(/^127\.0\.0\.1:/);
    expect(services['data-plane']!.ports).toBeUndefined();
    expect(published.join(' ')).not.toMatch(/9090|ADMIN_PORT/);
  });

  it('keeps ports and healthchecks on the config defaults', () => {
    const dp = services['data-plane']!;
    expect(dp.environment!.PUBLIC_PORT).toBe(String(dpDefaults.PUBLIC_PORT));
    expect(dp.environment!.ADMIN_PORT).toBe(String(dpDefaults.ADMIN_PORT));
    expect(dp.expose).toEqual([String(dpDefaults.PUBLIC_PORT), String(dpDefaults.ADMIN_PORT)]);
    expect(healthPort(dp)).toBe(dpDefaults.PUBLIC_PORT);
    expect((dp.healthcheck!.test ?? []).join(' ')).toContain("path:'/healthz'");
    const cp = services['control-plane']!;
    expect(cp.environment!.CONTROL_PLANE_PORT).toBe(String(cpDefaults.CONTROL_PLANE_PORT));
    expect(healthPort(cp)).toBe(cpDefaults.CONTROL_PLANE_PORT);
    expect(cp.ports!.every((p) => p.endsWith(`:${cpDefaults.CONTROL_PLANE_PORT}`))).toBe(true);
    expect(healthPort(services.frontend!)).toBe(8443);
    expect(read('nginx.conf')).toContain(`server data-plane:${dpDefaults.PUBLIC_PORT} resolve;`);
    for (const name of ['redis', 'postgres', 'ollama', 'data-plane', 'control-plane', 'frontend', 'prometheus']) {
      expect(services[name]!.healthcheck?.test, name).toBeDefined();
    }
  });

  it('runs Redis with a password its healthcheck authenticates with, AOF and a volume; Postgres with init.sql and a volume', () => {
    const redis = services.redis!;
    expect(redis.command!.join(' ')).toMatch(/--appendonly yes/);
    expect(redis.volumes).toContain('redis-data:/data');
    expect(redis.environment!.REDIS_PASSWORD).toMatch(/^\$\{REDIS_PASSWORD:\?/);
    expect(redis.healthcheck!.test!.join(' ')).toContain('REDISCLI_AUTH="$$REDIS_PASSWORD" redis-cli ping | grep -qx PONG');
    const pg = services.postgres!;
    expect(pg.volumes).toContain('./init.sql:/docker-entrypoint-initdb.d/001-init.sql:ro');
    expect(pg.volumes).toContain('pg-data:/var/lib/postgresql/data');
    // The planes log in as the user and database Postgres creates.
    for (const plane of ['data-plane', 'control-plane']) {
      expect(services[plane]!.environment).toMatchObject({
        PGHOST: 'postgres',
        PGUSER: pg.environment!.POSTGRES_USER,
        PGDATABASE: pg.environment!.POSTGRES_DB,
      });
    }
  });

  it('pulls LLM_MODEL once Ollama is healthy, the same model the control plane asks for', () => {
    const pull = services['ollama-pull']!;
    expect(pull.command).toEqual(['pull', '${LLM_MODEL:-llama3.2:1b}']);
    expect(services['control-plane']!.environment!.LLM_MODEL).toBe('${LLM_MODEL:-llama3.2:1b}');
    expect(interpolate('${LLM_MODEL:-llama3.2:1b}', {})).toBe(cpDefaults.LLM_MODEL);
    expect(pull.depends_on).toEqual({ ollama: { condition: 'service_healthy' } });
    expect(pull.restart).toBe('no');
  });

  it('trusts X-Forwarded-For from the compose network only, whose subnet it defines', () => {
    const subnet = compose.networks!.fluxgate!.ipam!.config![0]!.subnet;
    expect(subnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    expect(services['data-plane']!.environment!.TRUSTED_PROXIES).toBe(subnet);
    for (const [name, s] of Object.entries(services)) {
      if (s.network_mode !== 'none') expect(s.networks, name).toEqual(['fluxgate']);
    }
  });

  it('lets the data plane scale: no host port, nginx in front re-resolving its replicas', () => {
    expect(services['data-plane']!.ports).toBeUndefined();
    expect(services['data-plane']!.container_name).toBeUndefined();
    expect(read('nginx.conf')).toMatch(/resolver 127\.0\.0\.11 valid=\d+s/);
    expect(services.frontend!.depends_on).toMatchObject({ 'data-plane': { condition: 'service_healthy' } });
  });

  it('serves the frontend over TLS with a mounted or generated certificate', () => {
    const fe = services.frontend!;
    expect(fe.volumes).toEqual(['${FRONTEND_TLS_DIR:-frontend-tls}:/etc/nginx/tls:ro']);
    const cert = services['frontend-cert']!;
    expect(cert.volumes).toEqual(['${FRONTEND_TLS_DIR:-frontend-tls}:/app/certs']);
    expect(cert.command!.slice(0, 3)).toEqual(['node', 'data-plane/dist/bootstrap/provide-cert.js', '/app/certs']);
    expect(fe.depends_on).toMatchObject({ 'frontend-cert': { condition: 'service_completed_successfully' } });
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('copies only paths that exist in the repository (or were built in the build stage)', async () => {
    const { existsSync } = await import('node:fs');
    const { root } = await import('./support.js');
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    for (const src of sources) expect(existsSync(`${root}${src}`), src).toBe(true);
  });
  it('is multi-stage and Debian-based (uWS ships glibc binaries), runs Node as a non-root user, with a HEALTHCHECK per served target', () => {
    const froms = [...dockerfile.matchAll(/^FROM (\S+)(?: AS (\S+))?$/gm)].map((m) => ({ image: m[1]!, stage: m[2] }));
    expect(froms.map((f) => f.stage)).toEqual(['build', 'runtime', 'data-plane', 'control-plane', 'frontend']);
    for (const f of froms) expect(f.image).toMatch(/bookworm|^runtime$/);
    for (const f of froms) expect(f.image).not.toMatch(/alpine/i);
    expect(dockerfile).toMatch(/^USER node$/m);
    const stages = dockerfile.split(/^FROM /m).slice(1);
    for (const stage of stages.slice(2)) expect(stage).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toContain('port:process.env.PUBLIC_PORT||8443');
    expect(dockerfile).toContain('port:process.env.CONTROL_PLANE_PORT||8000');
  });
  it('serves the built SPA, not the sources', () => {
    expect(dockerfile).toContain('COPY --from=build /app/frontend/dist /usr/share/nginx/html');
  });
  it('has a .dockerignore keeping dependencies, builds, state and secrets out of the context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const entry of ['**/node_modules', '**/dist', '**/.fluxgate', '.env', '.git', '**/test-output', '**/*.pem']) {
      expect(ignored).toContain(entry);
    }
  });
});

describe('nginx.conf', () => {
  const conf = read('nginx.conf');
  it('listens with TLS on 8443 only, with the certificate compose mounts and the data plane’s TLS 1.2 suites', () => {
    expect(conf.match(/^\s*listen .*;$/gm)).toEqual(['    listen 8443 ssl;']);
    expect(conf).toContain('ssl_certificate /etc/nginx/tls/tls.crt;');
    expect(conf).toContain('ssl_certificate_key /etc/nginx/tls/tls.key;');
    expect(conf).toContain('ssl_protocols TLSv1.2 TLSv1.3;');
    expect(conf).toContain(`ssl_ciphers ${TLS12_CIPHERS};`);
  });
  it('proxies every API path family and /health* to the data plane without buffering', () => {
    expect(conf).toContain('location ~ ^/(v1|api|portal|dns-query|healthz?|readyz)(/|$) {');
    expect(conf).toContain('proxy_buffering off;');
    expect(conf).toContain('proxy_pass https://fluxgate_data_plane;');
    expect('/health').toMatch(/^\/(v1|api|portal|dns-query|healthz?|readyz)(\/|$)/);
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
