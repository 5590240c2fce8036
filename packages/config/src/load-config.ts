import convict from 'convict';
import { ConfigError, describeLocation } from './config-error.js';
import type { KeyGroup, KeySpec } from './key-spec.js';
import { ALL_KEYS, keysOf } from './services.js';
import type { ConfigOf, ServiceName } from './services.js';
import { listConfigFiles, readEnvironmentSettings, readYamlSettings } from './sources.js';
import type { Setting } from './sources.js';

/** Where conf.d lives in the containers; `CONF_DIR` or `opts.confDir` point elsewhere. */
export const DEFAULT_CONF_DIR = '/opt/dicomflow/conf.d';

export interface LoadConfigOptions {
  /** conf.d folder; defaults to `env.CONF_DIR`, then {@link DEFAULT_CONF_DIR}. */
  confDir?: string;
  /** Environment to read; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Loads the configuration of `service`: built-in defaults, then every `*.yaml` in the conf.d folder in
 * alphabetical order, then the environment (with `<KEY>_FILE` secrets). Keys of other services in
 * conf.d are ignored; a key no service knows, a value of the wrong type or a YAML syntax error throws
 * a {@link ConfigError} naming the key and its file (or `environment`).
 *
 * @returns a deeply frozen plain object
 */
export function loadConfig<S extends ServiceName>(service: S, opts: LoadConfigOptions = {}): ConfigOf<S> {
  const env = opts.env ?? process.env;
  const keys = keysOf(service);
  // env/args are handled here (for _FILE and error attribution), so convict must not read process.env.
  const config = convict<Record<string, unknown>>(toConvictSchema(keys), { env: {}, args: [] });

  const confDir = opts.confDir ?? env.CONF_DIR ?? DEFAULT_CONF_DIR;
  for (const file of listConfigFiles(confDir)) {
    config.load(acceptSettings(readYamlSettings(file), keys));
  }
  config.load(acceptSettings(readEnvironmentSettings(env, Object.keys(keys)), keys));

  // Every value was checked on the way in; this catches a schema whose own defaults are invalid.
  config.validate({ allowed: 'strict' });
  return deepFreeze(config.getProperties()) as ConfigOf<S>;
}

function toConvictSchema(keys: KeyGroup): convict.Schema<Record<string, unknown>> {
  const schema: Record<string, convict.SchemaObj> = {};
  for (const [name, spec] of Object.entries(keys)) {
    schema[name] = {
      doc: spec.doc,
      default: spec.default,
      sensitive: spec.sensitive,
      format: (value: unknown) => {
        if (!spec.kind.accepts(value)) throw new Error(`must be ${spec.kind.expects}`);
      },
    };
  }
  return schema;
}

/** Coerces and checks the settings of one source; returns the ones this service reads. */
function acceptSettings(settings: readonly Setting[], keys: KeyGroup): Record<string, unknown> {
  const accepted: Record<string, unknown> = {};
  for (const setting of settings) {
    // hasOwn, not `in`: a YAML key like `constructor` must not find Object.prototype members.
    const spec = Object.hasOwn(keys, setting.key) ? keys[setting.key] : undefined;
    if (spec === undefined) {
      if (ALL_KEYS.has(setting.key)) continue; // another service's key
      throw new ConfigError(
        `Unknown configuration key ${setting.key} in ${describeLocation(setting.source, setting.line)}: no DicomFlow service reads it`,
        locationOf(setting),
      );
    }
    accepted[setting.key] = checkedValue(setting, spec);
  }
  return accepted;
}

function checkedValue(setting: Setting, spec: KeySpec<unknown>): unknown {
  const value = spec.kind.coerce(setting.value);
  if (spec.kind.accepts(value)) return value;
  const shown = spec.sensitive ? '' : ` (got ${preview(setting.value)})`;
  throw new ConfigError(
    `Invalid value for ${setting.key} in ${describeLocation(setting.source, setting.line)}: must be ${spec.kind.expects}${shown}`,
    locationOf(setting),
  );
}

function locationOf(setting: Setting): { key: string; source: string; line?: number } {
  return {
    key: setting.key,
    source: setting.source,
    ...(setting.line === undefined ? {} : { line: setting.line }),
  };
}

function preview(value: unknown): string {
  const json = JSON.stringify(value) as string | undefined;
  const shown = json ?? String(value);
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
