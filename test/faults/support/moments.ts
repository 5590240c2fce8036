// The moments at which the fault tests inject a fault, and the readiness they wait for afterwards.
import { waitFor } from '@dicomflow/test-helpers';
import type { E2eStack } from '../../e2e/support/e2e-stack.js';

/** How soon after a fault ends every service must answer /readyz again (issue 16). */
export const READY_WITHIN_MS = 60_000;

/** Resolves once every service of `stack` answers /readyz with 200; throws after READY_WITHIN_MS. */
export async function everyServiceReady(stack: E2eStack): Promise<void> {
  await waitFor(
    async () => {
      const answers = await Promise.all(
        Object.values(stack.urls).map((url) =>
          fetch(`${url}/readyz`).then(
            (r) => r.status,
            () => 0,
          ),
        ),
      );
      return answers.every((status) => status === 200);
    },
    'every service ready',
    READY_WITHIN_MS,
  );
}

/** Resolves once the model of a run of `flow` runs (its first step is `running`). */
export async function modelRunning(stack: E2eStack, flow: string): Promise<void> {
  await waitFor(
    async () => {
      for (const run of await stack.runs(flow)) {
        if ((await stack.run(run.id)).steps[0]?.state === 'running') return true;
      }
      return false;
    },
    `the model of ${flow} running`,
    120_000,
  );
}

/** Resolves when storescp next logs the end of an association (the receipt is then being published). */
export function associationEnded(stack: E2eStack): Promise<void> {
  return new Promise((resolve) => {
    const stop = stack.onLine((service, line) => {
      if (service === 'storescp' && line.includes('association ended')) {
        stop();
        resolve();
      }
    });
  });
}
