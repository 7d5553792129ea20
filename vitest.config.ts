import { defineConfig } from 'vitest/config';

// Unit tests are pure and fast; e2e tests start real local test clusters (real etcd, real
// kubectl), so they run one file at a time on these 2-core machines.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
