// Stops `npm ci` / `npm install` (the root package's preinstall) on a Node older than the services need,
// with what to do instead; npm itself would only warn (EBADENGINE) and the services fail later.
import console from 'node:console';
import process from 'node:process';
import { nodeProblem } from './preflight.mjs';

const problem = nodeProblem();
if (problem) {
  console.error(`dicomflow: ${problem}`);
  process.exit(1);
}
