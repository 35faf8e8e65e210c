import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests beside the code, and integration tests that start real
// servers (uWS over TLS, Redis, Postgres) on port 0. Integration files run one at a time per
// worker pool slot because they share the machine's Redis and Postgres.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{contracts,data-plane,control-plane}/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        // The SPA's pure modules (SSE parser, formatting); browser behaviour is tested end to
        // end in Chromium by the integration project (frontend/test).
        test: {
          name: 'frontend',
          include: ['frontend/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        // The deploy files (compose, Kubernetes, .env.example, Prometheus, Grafana) checked
        // against both planes' config schemas: no Docker engine or cluster runs here.
        test: {
          name: 'deploy',
          include: ['deploy/test/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['{data-plane,control-plane,frontend}/test/**/*.test.ts'],
          // tsc -b before the first file: the tests that spawn dist/ never run a stale build.
          globalSetup: ['./vitest.global-setup.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: 'forks',
          fileParallelism: false,
        },
      },
    ],
  },
});
