import { defineConfig } from 'vitest/config';

// The compose smoke test (test/compose/*.smoke.ts, `npm run test:compose`): brings compose.yaml up on the
// local Docker engine with images built by scripts/compose-images.sh. Not part of `npm test`: it builds
// images and runs the whole suite in containers for a few minutes.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['test/compose/**/*.smoke.ts'],
    testTimeout: 600_000,
    hookTimeout: 900_000,
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
