/** Where a configuration value came from: a conf.d file path, or `environment`. */
export const ENVIRONMENT_SOURCE = 'environment';

/**
 * Configuration that stops a service from starting: an unknown key, a value of the wrong type, a YAML
 * syntax error or an unreadable `_FILE` secret. The message names the key and where it came from.
 */
export class ConfigError extends Error {
  /** The offending key (`''` when the problem is not about one key, e.g. a YAML syntax error). */
  readonly key: string;
  /** The file path the value came from, or `environment`. */
  readonly source: string;
  /** 1-based line in `source` when known. */
  readonly line: number | undefined;

  constructor(message: string, details: { key: string; source: string; line?: number; cause?: unknown }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'ConfigError';
    this.key = details.key;
    this.source = details.source;
    this.line = details.line;
  }
}

/** `path:line` or `path`, for messages. */
export function describeLocation(source: string, line: number | undefined): string {
  return line === undefined ? source : `${source}:${line}`;
}
