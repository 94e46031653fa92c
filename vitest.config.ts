import { defineConfig } from 'vitest/config'

/**
 * One vitest run over every workspace. Tests live beside the code
 * (`src/**\/*.test.ts`) or in a package's `test/` folder.
 */
export default defineConfig({
  test: {
    include: ['*/src/**/*.test.ts', '*/test/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
})
