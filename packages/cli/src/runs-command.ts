import { loadConfig } from '@dicomflow/config';
import { DICOMWEB_URL_PATTERN, type FlowDestination } from '@dicomflow/messages';
import { ExitCode, type CliOutput } from './cli-output.js';

/** Where `dicomflow runs` finds the flow-tracker. */
export interface RunsTarget {
  readonly env: NodeJS.ProcessEnv;
  /** `--tracker`: the tracker's base URL; by default the flow-tracker's HTTP_HOST and HTTP_PORT. */
  readonly trackerUrl?: string;
}

/** Longest wait for the tracker's answer (it answers once RabbitMQ confirmed the request, or after 30 s). */
const REQUEST_TIMEOUT_MS = 60_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The flow-tracker's base URL: `--tracker`, else `http://<HTTP_HOST>:<HTTP_PORT>` of the flow-tracker as it
 * reads them (conf.d and the environment), with a wildcard bind address (0.0.0.0, ::) read as this host.
 */
/**
 * The flow-tracker's API token as the tracker reads it (TRACKER_API_TOKEN or TRACKER_API_TOKEN_FILE, from
 * conf.d and the environment); '' when none is set (the tracker then answers 401, saying so).
 */
export function trackerTokenOf(target: RunsTarget): string {
  return loadConfig('flow-tracker', { env: target.env }).TRACKER_API_TOKEN;
}

export function trackerUrlOf(target: RunsTarget): string {
  if (target.trackerUrl !== undefined) return target.trackerUrl.replace(/\/+$/, '');
  const config = loadConfig('flow-tracker', { env: target.env });
  const host = ['', '0.0.0.0', '::', '[::]'].includes(config.HTTP_HOST) ? '127.0.0.1' : config.HTTP_HOST;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${config.HTTP_PORT}`;
}

/**
 * Reads `host:port:AET` (a host with colons, IPv6, may be in brackets), or the base URL of a DICOMweb
 * server (`http(s)://...`, sent without a token: the tracker's API takes `token_file` for one that needs
 * it). Throws a message for people when it is neither.
 */
export function parseDestination(text: string): FlowDestination {
  if (/^https?:\/\//i.test(text)) {
    if (!new RegExp(DICOMWEB_URL_PATTERN).test(text) || text.length > 2048)
      throw new Error(
        `--destination ${text}: expected an http(s) URL without user name or password (a DICOMweb server)`,
      );
    return { url: text };
  }
  const parts = text.split(':');
  const aeTitle = parts.pop() ?? '';
  const port = Number(parts.pop());
  const host = parts.join(':').replace(/^\[(.*)\]$/, '$1');
  if (
    host === '' ||
    !Number.isInteger(port) ||
    port < 1 ||
    port > 65535 ||
    aeTitle === '' ||
    aeTitle.length > 16
  )
    throw new Error(
      `--destination ${text}: expected host:port:AET (port 1-65535, AE title 1-16 characters) or a DICOMweb URL`,
    );
  return { host, port, ae_title: aeTitle };
}

/**
 * `dicomflow runs resend`: asks the flow-tracker (`POST /runs/:id/resend`) to deliver a sent or failed
 * run's output again, to `destinations` when given, else to the run's own. Exit code 1 when the tracker
 * refused (unknown run, run in progress, no output), 2 when it cannot be reached.
 */
export async function runsResendCommand(
  target: RunsTarget,
  runId: string,
  destinations: readonly FlowDestination[],
  json: boolean,
  output: CliOutput,
): Promise<ExitCode> {
  const answer = await post(target, runId, 'resend', destinations.length > 0 ? { destinations } : {}, output);
  if (typeof answer === 'number') return answer;
  const body = answer as { resendId: string; destinations: string[] };
  if (json) output.out(JSON.stringify(answer, null, 2));
  else
    output.out(
      `resend ${body.resendId} of run ${runId} requested: sending to ${body.destinations.join(', ')}; follow it with ${trackerUrlOf(target)}/runs/${runId}`,
    );
  return ExitCode.ok;
}

/**
 * `dicomflow runs rerun`: asks the flow-tracker (`POST /runs/:id/rerun`) to run a sent or failed run's
 * flow again on the same receipt, with the flow file as loaded now; prints the new run's id.
 */
export async function runsRerunCommand(
  target: RunsTarget,
  runId: string,
  json: boolean,
  output: CliOutput,
): Promise<ExitCode> {
  const answer = await post(target, runId, 'rerun', {}, output);
  if (typeof answer === 'number') return answer;
  const body = answer as { runId: string; flowFile: string };
  if (json) output.out(JSON.stringify(answer, null, 2));
  else
    output.out(
      `rerun of run ${runId} requested: new run ${body.runId} (${body.flowFile}); follow it with ${trackerUrlOf(target)}/runs/${body.runId}`,
    );
  return ExitCode.ok;
}

/** POSTs to the run's `action`; returns the 202 answer, or the exit code after printing why not. */
async function post(
  target: RunsTarget,
  runId: string,
  action: 'resend' | 'rerun',
  body: object,
  output: CliOutput,
): Promise<object | ExitCode> {
  if (!UUID.test(runId)) {
    output.err(`dicomflow: ${runId} is not a run id (a UUID)`);
    return ExitCode.usage;
  }
  const base = trackerUrlOf(target);
  let response: Response;
  try {
    response = await fetch(`${base}/runs/${runId}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${trackerTokenOf(target)}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    output.err(
      `dicomflow: cannot reach the flow-tracker at ${base}: ${reasonOf(err)} (set it with --tracker <url>)`,
    );
    return ExitCode.usage;
  }
  const text = await response.text();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = { error: text.slice(0, 500) };
  }
  if (response.status === 202 && typeof answer === 'object' && answer !== null) return answer;
  const error = (answer as { error?: unknown } | null)?.error;
  const why = typeof error === 'string' ? error : `answered ${response.status}`;
  output.err(
    response.status === 404
      ? `dicomflow: the flow-tracker at ${base} knows no run ${runId}`
      : `dicomflow: ${action} refused (${response.status}): ${why}`,
  );
  return ExitCode.problems;
}

/** A failed fetch's reason: its cause's code and message (fetch itself only says "fetch failed"). */
function reasonOf(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const deepest = cause instanceof Error ? cause : err;
  if (!(deepest instanceof Error)) return String(err);
  const code = (deepest as NodeJS.ErrnoException).code;
  return code !== undefined && !deepest.message.includes(code)
    ? `${code} ${deepest.message}`
    : deepest.message;
}
