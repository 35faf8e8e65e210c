// ESLint flat config: typescript-eslint's recommended rules, plus the import boundaries that keep
// the design visible (STYLE.md "Layout and boundaries"): the planes meet only through contracts/,
// only data-plane/src/http touches uWebSockets.js, and http/ never reaches up into routes/.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const PLANES = ['data-plane', 'control-plane', 'frontend'];
/** Imports of another plane's source. Tests may use another plane's test harness (test/support). */
const otherPlanes = (self) =>
  PLANES.filter((p) => p !== self).map((name) => ({
    group: [`**/${name}/src/**`, `**/${name}/dist/**`, `@fluxgate/${name}`, `@fluxgate/${name}/**`],
    message: 'The planes never import each other: share it through contracts/ (Redis names, schemas, protocols).',
  }));
const uws = { name: 'uWebSockets.js', message: 'Only data-plane/src/http/ imports uWebSockets.js (use http/uws.ts and http/types.ts).' };
const restrict = (opts) => ({ 'no-restricted-imports': ['error', opts] });

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'bench/results/**', '**/.fluxgate/**', '**/test-output/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `catch {}` is how best-effort cleanup (a process already gone, a socket already closed) reads.
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  { files: ['frontend/src/**/*.ts'], languageOptions: { globals: { ...globals.browser } } },
  // Tests read JSON answers and assert their shape: `any` there is a parsed body, not a hole in a type.
  { files: ['**/test/**/*.{ts,mjs}', '**/*.test.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  {
    files: ['contracts/**/*.ts'],
    rules: restrict({
      patterns: [
        {
          group: ['**/data-plane/**', '**/control-plane/**', '**/frontend/**', '@fluxgate/*-plane'],
          message: 'contracts/ depends on zod only.',
        },
      ],
    }),
  },
  {
    files: ['data-plane/**/*.{ts,mjs,js}'],
    ignores: ['data-plane/src/http/**'],
    rules: restrict({ paths: [uws], patterns: otherPlanes('data-plane') }),
  },
  {
    files: ['data-plane/src/http/**/*.ts'],
    rules: restrict({
      patterns: [
        ...otherPlanes('data-plane'),
        {
          group: ['../routes/*', '**/routes/**'],
          message: 'http/ is below routes/: it may not import from it (move the shared type into http/).',
        },
      ],
    }),
  },
  { files: ['control-plane/**/*.{ts,mjs,js}'], rules: restrict({ paths: [uws], patterns: otherPlanes('control-plane') }) },
  { files: ['frontend/**/*.{ts,js}'], rules: restrict({ paths: [uws], patterns: otherPlanes('frontend') }) },
);
