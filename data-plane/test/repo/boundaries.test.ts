/**
 * The import boundaries of STYLE.md are checked, not remembered: `npm test` runs ESLint over the
 * repository, and this file proves the rules in eslint.config.js bite, by linting imports that
 * cross each boundary (the text is linted in memory under a path inside the repository).
 */
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: root });

async function restricted(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('import boundaries (eslint.config.js)', () => {
  it('refuses one plane importing the other, either way', async () => {
    expect(await restricted('control-plane/src/x.ts', "import { a } from '../../data-plane/src/app.js';\nexport const b = a;\n")).toEqual([
      expect.stringMatching(/planes never import each other/),
    ]);
    expect(await restricted('data-plane/src/x.ts', "import { a } from '@fluxgate/control-plane';\nexport const b = a;\n")).toEqual([
      expect.stringMatching(/planes never import each other/),
    ]);
    expect(await restricted('frontend/src/x.ts', "import { a } from '../../data-plane/src/errors.js';\nexport const b = a;\n")).toEqual([
      expect.stringMatching(/planes never import each other/),
    ]);
  });

  it('keeps contracts on zod alone, uWebSockets.js inside http/, and http/ below routes/', async () => {
    expect(await restricted('contracts/src/x.ts', "import { a } from '../../data-plane/src/app.js';\nexport const b = a;\n")).toEqual([
      expect.stringMatching(/contracts\/ depends on zod only/),
    ]);
    expect(
      await restricted(
        'data-plane/src/routes/x.ts',
        "import type { TemplatedApp } from 'uWebSockets.js';\nexport type A = TemplatedApp;\n",
      ),
    ).toEqual([expect.stringMatching(/Only data-plane\/src\/http\/ imports uWebSockets.js/)]);
    expect(
      await restricted('data-plane/src/http/x.ts', "import type { RouteSpec } from '../routes/context.js';\nexport type A = RouteSpec;\n"),
    ).toEqual([expect.stringMatching(/http\/ is below routes\//)]);
  });

  it('allows what the design allows: contracts from either plane, uWS in http/, tests using the other plane’s harness', async () => {
    expect(
      await restricted('control-plane/src/x.ts', "import { redisKeys } from '@fluxgate/contracts';\nexport const k = redisKeys;\n"),
    ).toEqual([]);
    expect(
      await restricted('data-plane/src/http/x.ts', "import type { TemplatedApp } from 'uWebSockets.js';\nexport type A = TemplatedApp;\n"),
    ).toEqual([]);
    expect(
      await restricted(
        'control-plane/test/x.test.ts',
        "import { startGateway } from '../../data-plane/test/support/gateway.js';\nexport const s = startGateway;\n",
      ),
    ).toEqual([]);
  });
});
