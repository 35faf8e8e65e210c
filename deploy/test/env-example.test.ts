/**
 * `.env.example` documents every variable any config schema reads (the data plane, the control
 * plane, `npm start`'s supervisor), each as `NAME=default` under a comment, with the schema's own
 * default; and it documents nothing that no schema reads, except the variables docker-compose.yml
 * itself interpolates (`${FRONTEND_PORT…}`, `${POSTGRES_PASSWORD…}`). A test fails on either side.
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { controlPlaneEnvSchema } from '../../control-plane/src/config/schema.js';
import { dataPlaneEnvSchema } from '../../data-plane/src/config/schema.js';
import { supervisorEnvSchema } from '../../data-plane/src/standalone/config.js';
import { composeDefaults, composeVariables, isSecretName, read } from './support.js';

const schemas: Record<string, z.ZodObject> = {
  'data plane': dataPlaneEnvSchema,
  'control plane': controlPlaneEnvSchema,
  'npm start': supervisorEnvSchema,
};
const lines = read('.env.example').split('\n');
const documented = new Map(
  lines.flatMap((l, i) => {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(l);
    return m ? [[m[1]!, { value: m[2]!, line: i }] as const] : [];
  }),
);
/** Defaults that depend on the machine (one worker per CPU): documented empty, which means exactly that. */
const MACHINE_DEFAULTS = new Set(['DATA_PLANE_WORKERS']);
const readBySchemas = new Set(Object.values(schemas).flatMap((s) => Object.keys(s.shape)));

/** The schema's default for one variable, written as .env.example would ('' for none). */
function defaultOf(schema: z.ZodObject, name: string): string | null {
  const parsed = schema.shape[name]!.safeParse(undefined);
  if (!parsed.success) return null;
  const v: unknown = parsed.data;
  if (v === undefined) return '';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.join(',');
  if (v instanceof Map) return [...v].map(([k, x]) => `${String(k)}=${String(x)}`).join(',');
  return null; // a structured default (e.g. per-level durations): its text form is the schema's to say
}

describe('.env.example', () => {
  it.each(Object.entries(schemas))('documents every variable the %s reads, under a comment', (_plane, schema) => {
    const missing = Object.keys(schema.shape).filter((v) => {
      const entry = documented.get(v);
      return !entry || !lines.slice(Math.max(0, entry.line - 6), entry.line).some((l) => l.startsWith('#'));
    });
    expect(missing).toEqual([]);
  });

  it.each(Object.entries(schemas))('gives each variable of the %s its schema default', (_plane, schema) => {
    const wrong = Object.keys(schema.shape).flatMap((v) => {
      const want = MACHINE_DEFAULTS.has(v) ? '' : defaultOf(schema, v);
      const have = documented.get(v)?.value;
      return want === null || have === undefined || have === want ? [] : [`${v}: .env.example has "${have}", the default is "${want}"`];
    });
    expect(wrong).toEqual([]);
  });

  it('documents nothing that neither a schema nor docker-compose.yml reads', () => {
    const compose = composeVariables();
    const stray = [...documented.keys()].filter((v) => !readBySchemas.has(v) && !compose.has(v));
    expect(stray).toEqual([]);
  });

  it('documents every variable docker-compose.yml interpolates, the compose-only ones with compose’s default', () => {
    expect([...composeVariables()].filter((v) => !documented.has(v))).toEqual([]);
    const wrong = [...composeDefaults()].flatMap(([v, def]) =>
      readBySchemas.has(v) || documented.get(v)?.value === def
        ? []
        : [`${v}: .env.example has "${documented.get(v)?.value}", compose "${def}"`],
    );
    expect(wrong).toEqual([]);
  });

  it('can be copied to .env for compose as it is: it overrides none of compose’s defaults', () => {
    const overridden = [...composeDefaults()].flatMap(([v, def]) => {
      const value = documented.get(v)?.value;
      return value === undefined || value === '' || value === def ? [] : [`${v}: "${value}" would replace compose's "${def}"`];
    });
    expect(overridden).toEqual([]);
  });

  it('holds no secret value', () => {
    for (const [name, { value }] of documented) if (isSecretName(name)) expect(value, name).toBe('');
  });

  it('names every control-plane variable in the README', () => {
    const readme = read('README.md');
    expect(Object.keys(controlPlaneEnvSchema.shape).filter((v) => !readme.includes(v))).toEqual([]);
  });
});
