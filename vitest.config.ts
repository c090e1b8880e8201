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
    // Under CI a JSON report lets .ci/run print the plain "N passed, N failed" closing line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci/vitest-report.json' }]] : ['default'],
  },
})
