import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FixtureError } from './errors.js';
import { readFileMeta } from './part10-meta.js';
import { mapLimit, runCommand, type CommandResult } from './run-command.js';

export type StoreScuResult = CommandResult;

export interface StoreScuOptions {
  host?: string;
  port: number;
  callingAe?: string;
  calledAe?: string;
  /** Files to send, in order; a directory stands for every file below it. */
  files: string[];
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /**
   * 'file' (default): propose, for every SOP class and transfer syntax found in the files' meta groups,
   * a presentation context with exactly that transfer syntax, so each file travels as it is stored
   * (storescu alone only proposes uncompressed syntaxes and would fail or convert). Unknown (private)
   * SOP classes are proposed too. 'storescu': storescu's own default proposal.
   */
  propose?: 'file' | 'storescu';
  /** Stop at the first failed store (storescu's default); false (default) passes -nh and sends them all. */
  haltOnFailure?: boolean;
}

const MAX_PRESENTATION_CONTEXTS = 128;
// Linux allows ~2 MB of arguments; beyond this many bytes of paths, files go through a directory (+sd).
const MAX_ARGUMENT_BYTES = 256 * 1024;

async function expandFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    if ((await stat(path)).isDirectory()) {
      const entries = await readdir(path, { recursive: true, withFileTypes: true });
      const found = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
      files.push(...found.sort());
    } else {
      files.push(path);
    }
  }
  return files;
}

/**
 * A storescu association profile (-xf) proposing each (SOP class, transfer syntax) pair of the files;
 * undefined when no file has a readable meta group (storescu then reports the files itself).
 */
async function profileFor(files: readonly string[]): Promise<string | undefined> {
  const metas = await mapLimit(files, 32, (file) => readFileMeta(file).catch(() => undefined));
  const pairs = new Map<string, { sopClass: string; syntax: string }>();
  for (const meta of metas) {
    if (meta) {
      const key = `${meta.sopClassUid}\\${meta.transferSyntaxUid}`;
      pairs.set(key, { sopClass: meta.sopClassUid, syntax: meta.transferSyntaxUid });
    }
  }
  if (pairs.size === 0) return undefined;
  if (pairs.size > MAX_PRESENTATION_CONTEXTS) {
    throw new FixtureError(
      `${pairs.size} SOP class/transfer syntax pairs exceed ${MAX_PRESENTATION_CONTEXTS} contexts`,
    );
  }
  const syntaxes = [...new Set([...pairs.values()].map((p) => p.syntax))];
  const lines = ['[[TransferSyntaxes]]'];
  syntaxes.forEach((syntax, i) => lines.push(`[TS${i + 1}]`, `TransferSyntax1 = ${syntax}`));
  lines.push('[[PresentationContexts]]', '[Contexts]');
  [...pairs.values()].forEach(({ sopClass, syntax }, i) => {
    lines.push(`PresentationContext${i + 1} = ${sopClass}\\TS${syntaxes.indexOf(syntax) + 1}`);
  });
  lines.push('[[Profiles]]', '[Files]', 'PresentationContexts = Contexts', '');
  return lines.join('\n');
}

/**
 * Sends files with dcmtk's storescu in one association and returns its exit code and output (add '-v'
 * to extraArgs to see one "Received Store Response" line per instance). Never throws for a failed store.
 * Very long file lists are passed as a directory of symlinks with +sd (order then follows the directory).
 */
export async function storescu(opts: StoreScuOptions): Promise<StoreScuResult> {
  const work = await mkdtemp(join(tmpdir(), 'dicomflow-storescu-'));
  try {
    const files = (await expandFiles(opts.files)).map((f) => resolve(f));
    const args = ['-aet', opts.callingAe ?? 'STORESCU', '-aec', opts.calledAe ?? 'ANY-SCP'];
    if (opts.haltOnFailure !== true) args.push('-nh');
    const profile = (opts.propose ?? 'file') === 'file' ? await profileFor(files) : undefined;
    if (profile !== undefined) {
      const config = join(work, 'storescu.cfg');
      await writeFile(config, profile);
      args.push('-xf', config, 'Files');
    }
    args.push(...(opts.extraArgs ?? []), opts.host ?? '127.0.0.1', String(opts.port));
    if (files.reduce((n, f) => n + f.length + 1, 0) > MAX_ARGUMENT_BYTES) {
      const links = join(work, 'files');
      await mkdir(links);
      await mapLimit(files, 64, (file, i) => symlink(file, join(links, `${String(i).padStart(7, '0')}.dcm`)));
      args.push('+sd', links);
    } else {
      args.push(...files);
    }
    return await runCommand('storescu', args, {
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** C-ECHO with dcmtk's echoscu; returns its exit code (0 = verified) and output. */
export function echoscu(opts: {
  host?: string;
  port: number;
  callingAe?: string;
  calledAe?: string;
}): Promise<StoreScuResult> {
  return runCommand('echoscu', [
    '-aet',
    opts.callingAe ?? 'ECHOSCU',
    '-aec',
    opts.calledAe ?? 'ANY-SCP',
    opts.host ?? '127.0.0.1',
    String(opts.port),
  ]);
}
