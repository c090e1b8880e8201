import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'functions/**/*.test.ts',
      'lib/**/*.test.ts',
      'tests/**/*.test.ts',
      'infra/**/*.test.ts',
      'scripts/**/*.test.ts',
    ],
    globalSetup: ['tests/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 180_000,
    teardownTimeout: 30_000,
  },
})
