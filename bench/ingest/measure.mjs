// Timing, memory sampling and number formatting for the ingest bench.
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { storescu } from '@dicomflow/test-helpers';
import { AE_TITLE } from './receivers.mjs';
import process from 'node:process';
import { clearInterval, setInterval } from 'node:timers';

export const MB = 1_000_000;

export { median } from '../lib.mjs';

export const fixed = (n) => (Number.isFinite(n) ? n.toFixed(2) : 'NaN');

/**
 * Sends `files` with one storescu (one association) and returns the wall time of that process in
 * seconds. storescu proposes only what the files need (-R); every instance must be answered Success.
 */
export async function timedSend({ port, files, shim }) {
  const started = performance.now();
  const result = await storescu({
    port,
    files,
    calledAe: AE_TITLE,
    propose: 'storescu',
    haltOnFailure: true,
    extraArgs: ['-R', '-v'],
    env: { ...process.env, LD_PRELOAD: shim },
    timeoutMs: 30 * 60_000,
  });
  const seconds = (performance.now() - started) / 1000;
  const successes = (result.stderr.match(/Received Store Response \(Success\)/g) ?? []).length;
  if (result.code !== 0 || successes !== files.length) {
    const errors = result.stderr
      .split('\n')
      .filter((line) => /^[EF]:/.test(line))
      .slice(0, 5)
      .join('\n');
    throw new Error(`storescu: exit ${result.code}, ${successes}/${files.length} stored\n${errors}`);
  }
  return seconds;
}

/**
 * CPU time (user + system, ms) a process has used, its waited-for children included (dcmtk's
 * `storescp --fork` children), or NaN once it is gone. Unlike wall time, this hardly depends on what
 * else runs on the machine, so it shows the receivers' own cost per byte even on a busy box.
 */
export async function cpuMs(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime, stime, cutime, cstime are fields 14-17 (1-based) of the whole line.
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

// USER_HZ: 100 on every Linux build this runs on (getconf CLK_TCK).
const CLOCK_TICKS_PER_SECOND = 100;

async function statusKb(pid, field) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) : 0;
}

/** Samples VmRSS of `pid` every `everyMs` until stopped; `stop()` adds VmHWM and returns the peak in MB. */
export function sampleRss(pid, everyMs = 100) {
  let peakKb = 0;
  let samples = 0;
  const timer = setInterval(() => {
    statusKb(pid, 'VmRSS')
      .then((kb) => {
        samples += 1;
        peakKb = Math.max(peakKb, kb);
      })
      .catch(() => undefined);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      const hwmKb = await statusKb(pid, 'VmHWM').catch(() => 0);
      return {
        peakMb: Math.max(peakKb, hwmKb) / 1024,
        sampledPeakMb: peakKb / 1024,
        hwmMb: hwmKb / 1024,
        samples,
      };
    },
  };
}
