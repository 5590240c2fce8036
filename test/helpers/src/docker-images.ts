import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile, copyFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChecked, runCommand } from './run-command.js';

/** The base image of test models: a busybox-static root filesystem (no registry needed). */
export const TEST_BASE_IMAGE = 'dicomflow-test/busybox:1';

/** Where Debian's busybox-static puts the binary (scripts/test.sh installs it). */
const BUSYBOX = process.env.BUSYBOX_STATIC ?? '/bin/busybox';

/** True when the engine has an image with this tag. */
export async function dockerImageExists(tag: string): Promise<boolean> {
  return (await runCommand('docker', ['image', 'inspect', tag])).code === 0;
}

let baseImage: Promise<string> | undefined;

/**
 * Makes sure {@link TEST_BASE_IMAGE} exists: a root filesystem of the static busybox with a link per applet,
 * `/tmp`, and users `root` and `nobody`, imported with `docker import`. Idempotent (kept by tag).
 */
export function ensureTestBaseImage(): Promise<string> {
  baseImage ??= (async () => {
    if (await dockerImageExists(TEST_BASE_IMAGE)) return TEST_BASE_IMAGE;
    const root = await mkdtemp(join(tmpdir(), 'dicomflow-rootfs-'));
    try {
      await mkdir(join(root, 'bin'));
      await mkdir(join(root, 'etc'));
      await mkdir(join(root, 'tmp'));
      await chmod(join(root, 'tmp'), 0o1777);
      await copyFile(BUSYBOX, join(root, 'bin/busybox'));
      await chmod(join(root, 'bin/busybox'), 0o755);
      const { stdout } = await runChecked(BUSYBOX, ['--list']);
      for (const applet of stdout
        .split('\n')
        .filter((name) => /^[a-z0-9_.[-]+$/.test(name) && name !== 'busybox')) {
        await symlink('busybox', join(root, 'bin', applet));
      }
      await writeFile(
        join(root, 'etc/passwd'),
        'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n',
      );
      await writeFile(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
      const tarFile = join(root, '..', `${root.split('/').pop() ?? 'rootfs'}.tar`);
      await runChecked('tar', ['-C', root, '-cf', tarFile, '.']);
      try {
        await runChecked('docker', [
          'import',
          '--change',
          'ENV PATH=/bin',
          '--change',
          'CMD ["/bin/sh"]',
          tarFile,
          TEST_BASE_IMAGE,
        ]);
      } finally {
        await rm(tarFile, { force: true });
      }
      return TEST_BASE_IMAGE;
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  })().catch((err: unknown) => {
    baseImage = undefined;
    throw err;
  });
  return baseImage;
}

/** A test model: a shell script run by busybox `sh` as the image's entrypoint. */
export interface TestModelImage {
  /** Short name, part of the tag (`dicomflow-test/<name>:<hash of the script>`). */
  readonly name: string;
  /** The script (`/model.sh`); it sees the consumer's environment (DICOMFLOW_INPUT_DIR, ...). */
  readonly script: string;
}

/**
 * Builds (`docker build`, FROM {@link TEST_BASE_IMAGE}) an image whose entrypoint runs `script`, unless an
 * image of the same script exists already (the tag carries its hash). Returns the tag.
 */
export async function buildTestModelImage(model: TestModelImage): Promise<string> {
  const base = await ensureTestBaseImage();
  const hash = createHash('sha256').update(base).update('\0').update(model.script).digest('hex').slice(0, 12);
  const tag = `dicomflow-test/${model.name}:${hash}`;
  if (await dockerImageExists(tag)) return tag;
  const context = await mkdtemp(join(tmpdir(), 'dicomflow-model-'));
  try {
    await writeFile(join(context, 'model.sh'), model.script);
    await writeFile(
      join(context, 'Dockerfile'),
      `FROM ${base}\nCOPY model.sh /model.sh\nENTRYPOINT ["/bin/sh", "/model.sh"]\n`,
    );
    await runChecked('docker', ['build', '--quiet', '--tag', tag, context], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
    });
    return tag;
  } finally {
    await rm(context, { recursive: true, force: true });
  }
}

/** The copy model: every input file to the output, same layout. */
export const COPY_MODEL: TestModelImage = {
  name: 'copy-model',
  script: 'set -e\ncp -r "${DICOMFLOW_INPUT_DIR:-/input}/." "${DICOMFLOW_OUTPUT_DIR:-/output}/"\n',
};
