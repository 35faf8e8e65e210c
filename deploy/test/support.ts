import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const read = (f: string): string => readFileSync(`${root}${f}`, 'utf8');

export interface Service {
  image?: string;
  build?: { context: string; target: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  networks?: string[];
  network_mode?: string;
  container_name?: string;
  restart?: string;
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }> | string[];
}
export interface Compose {
  services: Record<string, Service>;
  networks?: Record<string, { ipam?: { config?: { subnet: string }[] } }>;
  secrets?: Record<string, unknown>;
  volumes?: Record<string, unknown>;
}
export const compose = parse(read('docker-compose.yml')) as Compose;

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} from `env`, and $$ for a literal $. */
export function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}/g,
    (whole, name: string | undefined, op: string | undefined, arg: string) => {
      if (whole === '$$') return '$';
      const v = env[name!];
      if (op === ':?' || op === '?') {
        if (v === undefined || (op === ':?' && v === '')) throw new Error(`${name} is required: ${arg}`);
        return v;
      }
      if (op === ':-') return v === undefined || v === '' ? arg : v;
      if (op === '-') return v ?? arg;
      return v ?? '';
    },
  );
}

/** Every variable compose interpolates (.env's variables). */
export const composeVariables = (): Set<string> =>
  new Set(
    read('docker-compose.yml')
      .split('\n')
      .filter((l) => !l.trim().startsWith('#'))
      .flatMap((l) => [...l.matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((m) => m[1]!)),
  );

/** A variable that holds a secret itself (not a path to one). */
export const isSecretName = (name: string): boolean => /(PASSWORD|SECRET|_TOKEN)$|^MCP_TOKENS$/.test(name);

/**
 * The published ports the README's "Production" section declares, in compose's own syntax: the
 * backticked items of the line that starts with "Published by `docker-compose.yml`".
 */
export function publishedInReadme(): string[] {
  const line = read('README.md')
    .split('\n')
    .find((l) => l.startsWith('Published by `docker-compose.yml`'));
  if (!line) throw new Error('README.md has no line starting with "Published by `docker-compose.yml`"');
  return [...line.matchAll(/`([^`]+:\d+)`/g)].map((m) => m[1]!);
}

/** Defaults docker-compose.yml gives its variables: `${NAME:-default}` → default, `${NAME:?…}` → '' (required). */
export function composeDefaults(): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of read('docker-compose.yml').split('\n')) {
    if (l.trim().startsWith('#')) continue;
    for (const m of l.matchAll(/(?<!\$)\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}/g)) out.set(m[1]!, m[2] === '-' ? m[3]! : '');
  }
  return out;
}
