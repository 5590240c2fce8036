import { defineConfig } from 'vitest/config';

// The fault-injection suite (test/faults, `npm run test:faults`): one file at a time, since some of its
// tests stop and start servers (a RabbitMQ node, PostgreSQL, MinIO, a Docker engine) of their own and
// every test runs the whole suite of services.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['test/faults/**/*.faults.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    fileParallelism: false,
    maxWorkers: 1,
    reporters: ['default'],
  },
});
