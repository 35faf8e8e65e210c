import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { controlPlaneEnvSchema } from '../../control-plane/src/config/schema.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (f: string): string => readFileSync(`${root}${f}`, 'utf8');

describe('control-plane configuration is documented', () => {
  const vars = Object.keys(controlPlaneEnvSchema.shape);
  it('every variable is in .env.example with a default and a comment above it', () => {
    const lines = read('.env.example').split('\n');
    const missing = vars.filter((v) => {
      const i = lines.findIndex((l) => l.startsWith(`${v}=`));
      return i < 1 || !lines.slice(Math.max(0, i - 4), i).some((l) => l.startsWith('#'));
    });
    expect(missing).toEqual([]);
  });
  it('every variable is named in the README', () => {
    const readme = read('README.md');
    expect(vars.filter((v) => !readme.includes(v))).toEqual([]);
  });
});
