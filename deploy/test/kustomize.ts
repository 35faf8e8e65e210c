/**
 * A small kustomize for the tests (no kubectl on CI): resources (files and directories),
 * configMapGenerator (create and `behavior: merge`), images, namespace, and JSON 6902 patches with
 * `replace`/`add`. Anything else in a kustomization.yaml fails loudly, so the tests never check a
 * rendering that differs from `kubectl kustomize` (which gives the same objects, plus hashed
 * ConfigMap names and the common labels).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  [k: string]: unknown;
}

interface Kustomization {
  namespace?: string;
  resources?: string[];
  labels?: unknown;
  configMapGenerator?: { name: string; behavior?: 'create' | 'merge'; literals?: string[] }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  patches?: { target: { kind: string; name: string }; patch: string }[];
  apiVersion?: string;
  kind?: string;
}
const KNOWN = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'labels', 'configMapGenerator', 'images', 'patches']);

const literalsToData = (literals: string[] = []) =>
  Object.fromEntries(
    literals.map((l) => {
      const i = l.indexOf('=');
      if (i < 1) throw new Error(`configMapGenerator literal without KEY=: ${l}`);
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );

function applyJsonPatch(target: K8sObject, ops: { op: string; path: string; value: unknown }[]): void {
  for (const { op, path, value } of ops) {
    if (op !== 'replace' && op !== 'add') throw new Error(`patch op ${op} is not supported by the test renderer`);
    const parts = path.split('/').slice(1);
    const last = parts.pop()!;
    let node = target as Record<string, unknown>;
    for (const p of parts) {
      if (typeof node[p] !== 'object' || node[p] === null) throw new Error(`patch path ${path} does not exist`);
      node = node[p] as Record<string, unknown>;
    }
    if (op === 'replace' && !(last in node)) throw new Error(`patch replaces ${path}, which does not exist`);
    node[last] = value;
  }
}

export function render(dir: string): K8sObject[] {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  for (const key of Object.keys(k))
    if (!KNOWN.has(key)) throw new Error(`${dir}/kustomization.yaml: ${key} is not supported by the test renderer`);
  const out: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    if (!existsSync(path)) throw new Error(`${dir}/kustomization.yaml names ${r}, which does not exist`);
    if (statSync(path).isDirectory()) out.push(...render(path));
    else for (const doc of parseAllDocuments(readFileSync(path, 'utf8'))) if (doc.contents) out.push(doc.toJS() as K8sObject);
  }
  for (const g of k.configMapGenerator ?? []) {
    const existing = out.find((o) => o.kind === 'ConfigMap' && o.metadata.name === g.name);
    if (g.behavior === 'merge') {
      if (!existing) throw new Error(`configMapGenerator merges into ${g.name}, which the resources do not generate`);
      Object.assign(existing.data!, literalsToData(g.literals));
    } else {
      if (existing) throw new Error(`configMapGenerator creates ${g.name} twice`);
      out.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data: literalsToData(g.literals) });
    }
  }
  for (const p of k.patches ?? []) {
    const target = out.find((o) => o.kind === p.target.kind && o.metadata.name === p.target.name);
    if (!target) throw new Error(`patch targets ${p.target.kind}/${p.target.name}, which does not exist`);
    applyJsonPatch(target, parse(p.patch) as { op: string; path: string; value: unknown }[]);
  }
  for (const img of k.images ?? []) {
    let used = false;
    for (const c of out.flatMap(containersOf)) {
      const [name] = c.image.split(':');
      if (name !== img.name) continue;
      used = true;
      c.image = `${img.newName ?? img.name}:${img.newTag ?? c.image.split(':')[1] ?? 'latest'}`;
    }
    if (!used) throw new Error(`images: ${img.name} is used by no container`);
  }
  if (k.namespace) for (const o of out) if (o.kind !== 'Namespace') o.metadata.namespace = k.namespace;
  return out;
}

export interface Container {
  name: string;
  image: string;
  ports?: { name: string; containerPort: number; hostPort?: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: unknown } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: { cpu?: string; memory?: string } };
}
export interface Probe {
  httpGet?: { path: string; port: string | number; scheme?: string };
}
export interface PodSpec {
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string }; emptyDir?: object }[];
  hostNetwork?: boolean;
  terminationGracePeriodSeconds?: number;
}

export const podSpecOf = (o: K8sObject): PodSpec | undefined =>
  (o.spec?.template as { spec?: PodSpec } | undefined)?.spec ?? (o.kind === 'Pod' ? (o.spec as unknown as PodSpec) : undefined);
export const containersOf = (o: K8sObject): Container[] => podSpecOf(o)?.containers ?? [];
