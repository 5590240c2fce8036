// Builds the model image of the example flow (mounts/flows/ct-copy.yaml): dicomflow-example/copy:1, a
// busybox root file system whose entrypoint copies /input to /output. No registry is needed: the root file
// system comes from Debian's busybox-static (scripts/up.sh installs it). Quick when the image exists.
// Usage: node scripts/example-image.mjs   (after `npm run build`)
import { execFileSync } from 'node:child_process';
import console from 'node:console';
import { buildTestModelImage, COPY_MODEL } from '@dicomflow/test-helpers';

export const EXAMPLE_IMAGE = 'dicomflow-example/copy:1';

const built = await buildTestModelImage(COPY_MODEL);
execFileSync('docker', ['tag', built, EXAMPLE_IMAGE]);
console.log(`model image ${EXAMPLE_IMAGE} ready (copies /input to /output)`);
