import { migrate as runMigrations, type Pool } from '@dicomflow/database';
import type { Logger } from '@dicomflow/runtime';

/**
 * The sender's tables, one SQL script per version, applied in order and never edited once released.
 * `$schema` stands for the quoted schema name.
 */
const MIGRATIONS: readonly string[] = [
  `
  -- One row per instance a target acknowledged (success or warning) for a run: a redelivered
  -- flow.finished sends only what has no row here.
  CREATE TABLE $schema.acks (
    run_id uuid NOT NULL,
    target text NOT NULL,
    member text NOT NULL,
    sop_instance_uid text NOT NULL,
    status integer NOT NULL,
    acked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, target, member)
  );
  CREATE INDEX acks_acked_at ON $schema.acks (acked_at);
  `,
  `
  -- One row per run handed to the sender (flow.finished): 'sending' from the start of a delivery until its
  -- outcome (send.finished or send.failed) is published, then 'done'. While a run is 'sending' (also
  -- between the retries of a message) the janitor keeps its outputs and acknowledgements.
  CREATE TABLE $schema.deliveries (
    run_id uuid PRIMARY KEY,
    output_bucket text NOT NULL,
    state text NOT NULL CHECK (state IN ('sending', 'done')),
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    outputs_removed_at timestamptz
  );
  CREATE INDEX deliveries_done ON $schema.deliveries (updated_at) WHERE state = 'done';
  `,
];

/**
 * Creates the schema and brings its tables to the latest version (the shared runner of
 * `@dicomflow/database`). Safe to run from several replicas at once.
 */
export async function migrate(pool: Pool, schema: string, logger: Logger): Promise<void> {
  await runMigrations(pool, { schema, name: 'sender', migrations: MIGRATIONS, logger });
}
