/**
 * The Kubernetes manifests (deploy/k8s), rendered base and production overlay, held to the same
 * invariants as compose: every variable a plane gets is in its config schema and parses with the
 * real loader, secrets only by reference, ports and probes on the config defaults, admin and MCP
 * reachable from inside the cluster only, Redis and Postgres as external services.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig as loadControlPlaneConfig } from '../../control-plane/src/config/load.js';
import { controlPlaneEnvSchema } from '../../control-plane/src/config/schema.js';
import { adminTlsEnabled } from '../../data-plane/src/config/admin-listener.js';
import { loadConfig as loadDataPlaneConfig } from '../../data-plane/src/config/load.js';
import { dataPlaneEnvSchema } from '../../data-plane/src/config/schema.js';
import { containersOf, podSpecOf, render, type Container, type K8sObject } from './kustomize.js';
import { isSecretName, root } from './support.js';

const renders = {
  base: render(`${root}deploy/k8s/base`),
  production: render(`${root}deploy/k8s/overlays/production`),
};
const dpDefaults = loadDataPlaneConfig({});
const cpDefaults = loadControlPlaneConfig({});
const SECRET_VALUES: Record<string, string> = {
  'jwt-secret': randomBytes(32).toString('base64url'),
  'admin-token': randomBytes(24).toString('base64url'),
  'mcp-token': randomBytes(32).toString('base64url'),
  'postgres-password': 'p@ss:w/o%rd#?x',
  'redis-password': 'r3dis@:/%#?',
};

const PLANES = {
  'fluxgate-data-plane': { schema: Object.keys(dataPlaneEnvSchema.shape), image: 'fluxgate/data-plane' },
  'fluxgate-control-plane': { schema: Object.keys(controlPlaneEnvSchema.shape), image: 'fluxgate/control-plane' },
} as const;

describe.each(Object.entries(renders))('Kubernetes manifests (%s)', (variant, objects) => {
  const find = (kind: string, name: string): K8sObject => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (!o) throw new Error(`${variant}: no ${kind}/${name}`);
    return o;
  };
  const of = (kind: string) => objects.filter((o) => o.kind === kind);
  const configMap = (name: string) => find('ConfigMap', name).data ?? {};
  const container = (deployment: string): Container => containersOf(find('Deployment', deployment))[0]!;
  /** The environment the container starts with: its configMaps, then its env (secrets resolved to stand-ins). */
  const environment = (c: Container): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const from of c.envFrom ?? []) {
      expect(from.secretRef, 'envFrom takes ConfigMaps only (secrets one by one, by reference)').toBeUndefined();
      Object.assign(env, configMap(from.configMapRef!.name));
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      env[e.name] = ref ? SECRET_VALUES[ref.key]! : e.value!;
    }
    return env;
  };
  const portOf = (c: Container, name: string) => c.ports?.find((p) => p.name === name)?.containerPort;

  it('has the pieces of the design: two Deployments, HPA, PDBs, Services, NetworkPolicies, and no Secret values', () => {
    expect(
      of('Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual(['fluxgate-control-plane', 'fluxgate-data-plane']);
    expect(of('HorizontalPodAutoscaler')).toHaveLength(1);
    expect(
      of('PodDisruptionBudget')
        .map((p) => p.metadata.name)
        .sort(),
    ).toEqual(['fluxgate-control-plane', 'fluxgate-data-plane']);
    expect(of('NetworkPolicy').length).toBeGreaterThanOrEqual(3);
    // Secrets are referenced, never written: no Secret object at all, no StatefulSet of our own for the stores.
    expect(of('Secret')).toEqual([]);
    expect(of('StatefulSet')).toEqual([]);
  });

  it('gives each plane only variables its config schema reads, and an environment its real loader accepts', () => {
    for (const [name, plane] of Object.entries(PLANES)) {
      const c = container(name);
      expect(c.image.startsWith(variant === 'base' ? plane.image : `registry.example.com/${plane.image}`), c.image).toBe(true);
      const unknown = Object.keys(environment(c)).filter((v) => !plane.schema.includes(v));
      expect(unknown, name).toEqual([]);
    }
    const dp = loadDataPlaneConfig(environment(container('fluxgate-data-plane')));
    expect(adminTlsEnabled(dp)).toBe(true);
    expect(dp.ADMIN_HOST).toBe('0.0.0.0');
    expect(dp.NODE_ENV).toBe('production');
    expect(decodeURIComponent(new URL(dp.DATABASE_URL!).password)).toBe(SECRET_VALUES['postgres-password']);
    expect(decodeURIComponent(new URL(dp.REDIS_URL!).password)).toBe(SECRET_VALUES['redis-password']);
    const cp = loadControlPlaneConfig(environment(container('fluxgate-control-plane')));
    expect(decodeURIComponent(new URL(cp.DATABASE_URL!).password)).toBe(SECRET_VALUES['postgres-password']);
    expect(cp.MCP_MAX_PENALTY).toBe(dp.MCP_MAX_PENALTY);
    expect(cp.GUARD_PARDON_GRACE_SECONDS).toBe(dp.GUARD_PARDON_GRACE_SECONDS);
  });

  it('takes every secret from a Secret by reference; no ConfigMap holds one', () => {
    for (const d of of('Deployment')) {
      for (const c of containersOf(d)) {
        for (const e of c.env ?? []) {
          if (isSecretName(e.name)) {
            expect(e.value, `${d.metadata.name}.${e.name}`).toBeUndefined();
            expect(e.valueFrom?.secretKeyRef?.name, `${d.metadata.name}.${e.name}`).toBe('fluxgate-secrets');
          }
        }
      }
    }
    for (const cm of of('ConfigMap')) expect(Object.keys(cm.data ?? {}).filter(isSecretName), cm.metadata.name).toEqual([]);
  });

  it('mounts every certificate and key path the data plane is given from a Secret volume', () => {
    const d = find('Deployment', 'fluxgate-data-plane');
    const c = container('fluxgate-data-plane');
    const env = environment(c);
    const volumes = podSpecOf(d)!.volumes ?? [];
    for (const v of ['TLS_CERT_PATH', 'TLS_KEY_PATH', 'ADMIN_TLS_CERT_PATH', 'ADMIN_TLS_KEY_PATH']) {
      const mount = c.volumeMounts?.find((m) => env[v]!.startsWith(`${m.mountPath}/`));
      expect(mount, v).toBeDefined();
      expect(volumes.find((vol) => vol.name === mount!.name)?.secret?.secretName, v).toMatch(/^fluxgate-(public|admin)-tls$/);
    }
    // The state dir is the one writable place (the root filesystem is read-only).
    const state = c.volumeMounts!.find((m) => m.mountPath === env.FLUXGATE_STATE_DIR);
    expect(volumes.find((v) => v.name === state?.name)?.emptyDir).toBeDefined();
  });

  it('keeps ports and probes on the config defaults', () => {
    const dp = container('fluxgate-data-plane');
    const dpEnv = environment(dp);
    expect(portOf(dp, 'https')).toBe(dpDefaults.PUBLIC_PORT);
    expect(portOf(dp, 'admin')).toBe(dpDefaults.ADMIN_PORT);
    expect(dpEnv.PUBLIC_PORT).toBe(String(dpDefaults.PUBLIC_PORT));
    expect(dpEnv.ADMIN_PORT).toBe(String(dpDefaults.ADMIN_PORT));
    expect(dp.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
    expect(dp.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'https', scheme: 'HTTPS' });
    expect(dp.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'https', scheme: 'HTTPS' });
    const cp = container('fluxgate-control-plane');
    expect(portOf(cp, 'http')).toBe(cpDefaults.CONTROL_PLANE_PORT);
    expect(environment(cp).CONTROL_PLANE_PORT).toBe(String(cpDefaults.CONTROL_PLANE_PORT));
    expect(cp.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(cp.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'http' });
    for (const s of of('Service').filter((x) => (x.spec as { type: string }).type !== 'ExternalName')) {
      const spec = s.spec as { selector: Record<string, string>; ports: { targetPort: string }[] };
      const target = of('Deployment').find((d) =>
        Object.entries(spec.selector).every(
          ([k, v]) => (d.spec!.template as { metadata: { labels: Record<string, string> } }).metadata.labels[k] === v,
        ),
      );
      expect(target, s.metadata.name).toBeDefined();
      for (const p of spec.ports)
        expect(portOf(containersOf(target!)[0]!, p.targetPort), `${s.metadata.name}:${p.targetPort}`).toBeDefined();
    }
  });

  it('drains before it is killed: the grace period covers the preStop pause and DRAIN_TIMEOUT_MS', () => {
    const d = find('Deployment', 'fluxgate-data-plane');
    const c = container('fluxgate-data-plane');
    const pause = Number(c.lifecycle?.preStop?.exec?.command.at(-1) ?? 0);
    const drainMs = loadDataPlaneConfig(environment(c)).DRAIN_TIMEOUT_MS;
    expect(podSpecOf(d)!.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(pause * 1000 + drainMs);
  });

  it('scales the data plane with an HPA under a PDB, and runs the control plane twice (one leader, one standby)', () => {
    const hpa = find('HorizontalPodAutoscaler', 'fluxgate-data-plane').spec as {
      scaleTargetRef: { kind: string; name: string };
      minReplicas: number;
      maxReplicas: number;
    };
    expect(hpa.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'fluxgate-data-plane' });
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.maxReplicas).toBeGreaterThan(hpa.minReplicas);
    // The HPA owns the count; a CPU target needs a CPU request.
    expect(find('Deployment', 'fluxgate-data-plane').spec!.replicas).toBeUndefined();
    expect(container('fluxgate-data-plane').resources?.requests?.cpu).toBeDefined();
    // While Redis is down each replica gets tier ÷ LIMITS_ASSUMED_REPLICAS: the floor of the HPA.
    expect(environment(container('fluxgate-data-plane')).LIMITS_ASSUMED_REPLICAS).toBe(String(hpa.minReplicas));
    for (const name of ['fluxgate-data-plane', 'fluxgate-control-plane']) {
      const pdb = find('PodDisruptionBudget', name).spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
      const labels = (find('Deployment', name).spec!.template as { metadata: { labels: Record<string, string> } }).metadata.labels;
      expect(
        Object.entries(pdb.selector.matchLabels).every(([k, v]) => labels[k] === v),
        name,
      ).toBe(true);
      expect(pdb.minAvailable).toBeGreaterThanOrEqual(1);
    }
    expect((find('PodDisruptionBudget', 'fluxgate-data-plane').spec as { minAvailable: number }).minAvailable).toBeLessThan(
      hpa.minReplicas,
    );
    expect(find('Deployment', 'fluxgate-control-plane').spec!.replicas).toBe(2);
  });

  it('publishes nothing but the data plane’s https port: ClusterIP Services, no host ports, admin and MCP not in any Ingress', () => {
    for (const s of of('Service')) expect(['ClusterIP', 'ExternalName'], s.metadata.name).toContain((s.spec as { type: string }).type);
    for (const d of of('Deployment')) {
      expect(podSpecOf(d)!.hostNetwork).toBeUndefined();
      for (const c of containersOf(d)) for (const p of c.ports ?? []) expect(p.hostPort).toBeUndefined();
    }
    for (const ing of of('Ingress')) {
      const backends = JSON.stringify(ing.spec);
      expect(backends).toContain('"name":"fluxgate-data-plane","port":{"name":"https"}');
      expect(backends).not.toMatch(/admin|control-plane|9090|8000/);
    }
  });

  it('admits the admin (9090) and MCP (8000) ports only from labelled pods inside the cluster, behind a default deny', () => {
    const policies = of('NetworkPolicy').map(
      (p) =>
        p.spec as {
          podSelector: { matchLabels?: Record<string, string> };
          policyTypes: string[];
          ingress?: { from?: Record<string, unknown>[]; ports?: { port: number }[] }[];
        },
    );
    expect(policies.some((p) => Object.keys(p.podSelector).length === 0 && p.policyTypes.includes('Ingress') && !p.ingress)).toBe(true);
    const internal = [dpDefaults.ADMIN_PORT, cpDefaults.CONTROL_PLANE_PORT];
    for (const p of policies) {
      for (const rule of p.ingress ?? []) {
        const ports = (rule.ports ?? []).map((x) => x.port);
        // A rule without ports admits every port; one without `from` admits every source.
        expect(ports.length, 'every rule names its ports').toBeGreaterThan(0);
        if (!rule.from || rule.from.length === 0) {
          expect(ports).toEqual([dpDefaults.PUBLIC_PORT]);
          continue;
        }
        if (ports.some((x) => internal.includes(x))) {
          for (const peer of rule.from) {
            expect(peer.ipBlock, 'no address range: only pods of the cluster').toBeUndefined();
            expect(peer.podSelector, 'a pod selector narrows every peer').toBeDefined();
          }
        }
      }
    }
    // Each of the two ports is covered by a policy selecting the pods that listen on it.
    for (const [deployment, port] of [
      ['fluxgate-data-plane', dpDefaults.ADMIN_PORT],
      ['fluxgate-control-plane', cpDefaults.CONTROL_PLANE_PORT],
    ] as const) {
      const labels = (find('Deployment', deployment).spec!.template as { metadata: { labels: Record<string, string> } }).metadata.labels;
      const selecting = policies.filter((p) => Object.entries(p.podSelector.matchLabels ?? {}).every(([k, v]) => labels[k] === v));
      expect(
        selecting.some((p) => p.ingress?.some((r) => r.ports?.some((x) => x.port === port))),
        deployment,
      ).toBe(true);
    }
  });

  it('reaches Redis and Postgres as external services named in the planes’ settings', () => {
    const env = environment(container('fluxgate-data-plane'));
    const redisHost = new URL(env.REDIS_URL!).hostname;
    for (const host of [env.PGHOST!, redisHost]) {
      const s = find('Service', host);
      expect((s.spec as { type: string; externalName: string }).type).toBe('ExternalName');
      expect((s.spec as { externalName: string }).externalName).toMatch(/\./);
    }
  });
});

describe('the production overlay', () => {
  it('puts everything in its namespace, under the restricted Pod Security Standard, with pinned images', () => {
    const objects = renders.production;
    const ns = objects.find((o) => o.kind === 'Namespace')!;
    expect(ns.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    for (const o of objects)
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(ns.metadata.name);
    for (const d of objects.filter((o) => o.kind === 'Deployment')) {
      for (const c of containersOf(d)) expect(c.image).not.toMatch(/:latest$/);
      const spec = podSpecOf(d)! as unknown as {
        securityContext: Record<string, unknown>;
        containers: { securityContext: Record<string, unknown> }[];
      };
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of spec.containers) {
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
      }
    }
    // The MCP host names the control plane answers are the Service's names in this namespace.
    const cpConfig = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'fluxgate-control-plane-config')!.data!;
    expect(cpConfig.MCP_ALLOWED_HOSTS).toContain(`fluxgate-control-plane.${ns.metadata.name}.svc`);
  });
});
