import { fileURLToPath } from 'node:url';

/**
 * The compiled entry of a receiver worker. Workers always run the built `dist/` (from this file under
 * `src/` too, as the tests run it): the TypeScript sources cannot be run by node itself.
 */
export function workerEntryPath(): string {
  // src/cluster/ and dist/cluster/ are both two levels under the package folder.
  return fileURLToPath(new URL('../../dist/cluster/worker-main.js', import.meta.url));
}

/**
 * The node options a worker starts with: the service's own (heap and GC settings), without export
 * conditions, which a test runner sets to resolve the workspace packages to their sources.
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] ?? '';
    if (arg === '--conditions' || arg === '-C') {
      i++; // and its value
      continue;
    }
    if (arg.startsWith('--conditions=') || arg.startsWith('-C=')) continue;
    kept.push(arg);
  }
  return kept;
}
