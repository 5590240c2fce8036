/** One dependency the service needs to do its work (broker, database, S3, ...). */
export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency is usable; throws (or rejects) with the reason when it is not. */
  check: () => Promise<void> | void;
}

export type CheckResult = { ok: true } | { ok: false; error: string };

/** How long one check may take before it counts as failed. */
export const DEFAULT_CHECK_TIMEOUT_MS = 2000;

/** Runs every check in parallel, each bounded by `timeoutMs`; never throws. */
export async function runReadinessChecks(
  checks: readonly ReadinessCheck[],
  timeoutMs: number,
): Promise<{ ready: boolean; results: Record<string, CheckResult> }> {
  const entries = await Promise.all(
    checks.map(async (check) => [check.name, await runCheck(check, timeoutMs)] as const),
  );
  return { ready: entries.every(([, result]) => result.ok), results: Object.fromEntries(entries) };
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    // async wrapper: a check that throws synchronously is reported like one that rejects.
    await Promise.race([(async () => check.check())(), timedOut]);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}
