/**
 * The Grafana dashboard and the Prometheus scrape configs against the code: every series the
 * dashboard queries is a metric one of the planes really registers (names read from their
 * sources, default process metrics from prom-client itself), each plane's own metrics are all on
 * it, and the scrape jobs reach the admin listener over TLS with the token from a file, on the
 * ports and port names the config defaults and manifests use.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig as loadControlPlaneConfig } from '../../control-plane/src/config/load.js';
import { loadConfig as loadDataPlaneConfig } from '../../data-plane/src/config/load.js';
import { containersOf, render } from './kustomize.js';
import { compose, read, root } from './support.js';

const sourcesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sourcesUnder(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
/** `name: 'fluxgate_…'` in a plane's sources: the metrics it registers. */
const registered = (plane: string): Map<string, string> =>
  new Map(
    sourcesUnder(`${root}${plane}/src`).flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/name: '(fluxgate_[a-z0-9_]+)'/g)].map((m) => [m[1]!, file.slice(root.length)] as const),
    ),
  );
const defaultMetricNames = async (prefix = ''): Promise<string[]> => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return (await registry.getMetricsAsJSON()).map((m) => m.name);
};

const dashboard = JSON.parse(read('deploy/grafana/fluxgate.json')) as {
  uid: string;
  panels: { id: number; type: string; title: string; targets?: { expr: string }[] }[];
};
const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
const seriesIn = (expr: string) =>
  [...expr.matchAll(/\b((?:fluxgate|process|nodejs)_[a-z0-9_]+)\s*(?:\{|\[|\))/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''));
const jobsIn = (expr: string) => [...expr.matchAll(/job="([^"]+)"/g)].map((m) => m[1]!);

describe('deploy/grafana/fluxgate.json', () => {
  it('queries only metrics the planes register, each under the job that scrapes that plane', async () => {
    const dataPlane = new Set([...registered('data-plane').keys(), ...(await defaultMetricNames())]);
    const controlPlane = new Set([...registered('control-plane').keys(), ...(await defaultMetricNames('fluxgate_control_plane_'))]);
    expect(exprs.length).toBeGreaterThan(20);
    for (const expr of exprs) {
      const jobs = jobsIn(expr);
      expect(jobs.length, expr).toBeGreaterThan(0);
      for (const series of seriesIn(expr)) {
        for (const job of jobs) {
          const known = job === 'fluxgate-data-plane' ? dataPlane : job === 'fluxgate-control-plane' ? controlPlane : new Set();
          expect(known.has(series), `${series} under job ${job}`).toBe(true);
        }
      }
    }
  });

  it('shows every metric of both planes (DNS resolver internals aside)', () => {
    const used = new Set(exprs.flatMap(seriesIn));
    for (const plane of ['data-plane', 'control-plane']) {
      const missing = [...registered(plane)].filter(([name, file]) => !used.has(name) && !file.includes('/dns/')).map(([name]) => name);
      expect(missing, plane).toEqual([]);
    }
  });

  it('is importable: a datasource variable instead of a fixed one, unique panel ids', () => {
    expect(dashboard.uid).toBe('fluxgate');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(read('deploy/grafana/fluxgate.json')).not.toMatch(/"uid": "(?!\$\{datasource\}|fluxgate")/);
  });
});

interface ScrapeJob {
  job_name: string;
  scheme: string;
  authorization?: { type: string; credentials_file?: string; credentials?: string };
  tls_config?: Record<string, unknown>;
  dns_sd_configs?: { names: string[]; port: number }[];
  relabel_configs?: { regex?: string; action?: string }[];
}
const jobsOf = (file: string) => (parse(read(file)) as { scrape_configs: ScrapeJob[] }).scrape_configs;
const dashboardJobs = new Set(exprs.flatMap(jobsIn));

describe('deploy/prometheus', () => {
  const dp = loadDataPlaneConfig({});
  const cp = loadControlPlaneConfig({});
  it('compose: every data-plane replica over TLS on the admin port, both planes with the token from the compose secret', () => {
    const jobs = jobsOf('deploy/prometheus/prometheus.yml');
    expect(new Set(jobs.map((j) => j.job_name))).toEqual(dashboardJobs);
    const secretTarget = '/run/secrets/admin-token';
    expect(compose.services.prometheus!.volumes).toContain('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    const data = jobs.find((j) => j.job_name === 'fluxgate-data-plane')!;
    expect(data.scheme).toBe('https');
    expect(data.tls_config).toBeDefined();
    expect(data.dns_sd_configs).toEqual([expect.objectContaining({ names: ['data-plane'], port: dp.ADMIN_PORT })]);
    const control = jobs.find((j) => j.job_name === 'fluxgate-control-plane')!;
    expect(control.dns_sd_configs).toEqual([expect.objectContaining({ names: ['control-plane'], port: cp.CONTROL_PLANE_PORT })]);
    for (const j of jobs) {
      expect(j.authorization).toEqual({ type: 'Bearer', credentials_file: secretTarget });
    }
  });

  it('Kubernetes: pods by label and the port names the manifests give, TLS verified, the token from a file', () => {
    const jobs = jobsOf('deploy/prometheus/kubernetes.yml');
    expect(new Set(jobs.map((j) => j.job_name))).toEqual(dashboardJobs);
    const objects = render(`${root}deploy/k8s/overlays/production`);
    for (const j of jobs) {
      expect(j.authorization?.credentials).toBeUndefined();
      expect(j.authorization?.credentials_file).toMatch(/^\/etc\/prometheus\/secrets\//);
      const keep = j.relabel_configs!.find((r) => r.action === 'keep')!;
      const [app, portName] = keep.regex!.split(';');
      const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === app)!;
      expect(deployment, app).toBeDefined();
      expect(containersOf(deployment)[0]!.ports!.map((p) => p.name)).toContain(portName);
    }
    const data = jobs.find((j) => j.job_name === 'fluxgate-data-plane')!;
    expect(data.scheme).toBe('https');
    expect(data.tls_config).toMatchObject({
      ca_file: expect.any(String),
      server_name: expect.stringContaining('fluxgate-data-plane-admin.'),
    });
    expect(data.tls_config!.insecure_skip_verify).toBeUndefined();
  });
});
