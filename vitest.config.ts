import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration files each start servers and databases; two cores, two workers.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
