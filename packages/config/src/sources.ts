import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml';
import { ConfigError, ENVIRONMENT_SOURCE } from './config-error.js';

/** One raw value as a source gave it, before coercion and checks. */
export interface Setting {
  readonly key: string;
  readonly value: unknown;
  /** File path or `environment`. */
  readonly source: string;
  readonly line?: number;
}

const CONFIG_FILE = /\.ya?ml$/;

/**
 * The YAML files of a conf.d folder in the order they apply (plain code-point order, so
 * `00_default_config.yaml` < `10_site.yaml` < `a.yaml`). A folder that does not exist holds no files.
 */
export function listConfigFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ConfigError(`Cannot read the configuration folder ${dir}: ${(err as Error).message}`, {
      key: '',
      source: dir,
      cause: err,
    });
  }
  return entries
    .filter((entry) => !entry.name.startsWith('.') && CONFIG_FILE.test(entry.name) && !entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
    .map((name) => join(dir, name));
}

/** The top-level `KEY: value` pairs of one YAML file, each with its line. */
export function readYamlSettings(path: string): Setting[] {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read configuration file ${path}: ${(err as Error).message}`, {
      key: '',
      source: path,
      cause: err,
    });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(content, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const syntaxError = doc.errors.at(0);
  if (syntaxError !== undefined) {
    const line = syntaxError.linePos?.[0].line;
    throw new ConfigError(`YAML syntax error in ${path}: ${syntaxError.message.trimEnd()}`, {
      key: '',
      source: path,
      ...(line === undefined ? {} : { line }),
      cause: syntaxError,
    });
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return [];
  if (!isMap(root)) {
    throw new ConfigError(`${path}: the top level must be a mapping of KEY: value`, {
      key: '',
      source: path,
      line: lineCounter.linePos(root.range[0]).line,
    });
  }
  return root.items.map((pair) => {
    const keyNode = pair.key;
    const line = lineCounter.linePos(keyNode.range[0]).line;
    const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
    const valueNode = pair.value;
    const value: unknown = isNode(valueNode) ? valueNode.toJS(doc) : null;
    return { key, value, source: path, line };
  });
}

/**
 * The values of `keys` set in the environment, either directly or through `<KEY>_FILE` (a file whose
 * content, without trailing newlines, is the value: how Docker and Kubernetes hand out secrets).
 */
export function readEnvironmentSettings(env: NodeJS.ProcessEnv, keys: Iterable<string>): Setting[] {
  const settings: Setting[] = [];
  for (const key of keys) {
    const direct = env[key];
    const filePath = env[`${key}_FILE`];
    if (direct !== undefined && filePath !== undefined) {
      throw new ConfigError(`Both ${key} and ${key}_FILE are set in the environment; set only one`, {
        key,
        source: ENVIRONMENT_SOURCE,
      });
    }
    if (direct !== undefined) {
      settings.push({ key, value: direct, source: ENVIRONMENT_SOURCE });
    } else if (filePath !== undefined) {
      settings.push({ key, value: readSecretFile(key, filePath), source: `${filePath} (${key}_FILE)` });
    }
  }
  return settings;
}

function readSecretFile(key: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').replace(/[\r\n]+$/, '');
  } catch (err) {
    throw new ConfigError(`Cannot read ${key}_FILE=${path}: ${(err as Error).message}`, {
      key: `${key}_FILE`,
      source: ENVIRONMENT_SOURCE,
      cause: err,
    });
  }
}
