import { defineConfig } from 'vite';

// `npm run dev -w frontend` serves the SPA with hot reload and proxies the API paths to a data
// plane started by `npm start` (same origin for the browser, as in production).
const DATA_PLANE = 'https://127.0.0.1:8443';
const proxied = ['/portal', '/v1', '/api', '/dns-query', '/healthz', '/readyz'];

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    // Never inline assets as data: URLs: the CSP allows same-origin images only.
    assetsInlineLimit: 0,
    // No dynamic imports, so no preload helper; and no inline polyfill in index.html.
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  server: {
    proxy: Object.fromEntries(proxied.map((p) => [p, { target: DATA_PLANE, secure: false }])),
  },
});
