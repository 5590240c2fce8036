import type { Logger } from '@dicomflow/runtime';
import { migrate as runMigrations, type Pool } from '@dicomflow/database';

/**
 * The scheduler's tables, one SQL script per version, applied in order and never edited once released:
 * a change is a new version. `$schema` stands for the quoted schema name.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE $schema.runs (
    run_id uuid PRIMARY KEY,
    receipt_id uuid NOT NULL,
    -- The flow.matched body: the flow as it was at match time and the run's input.
    matched jsonb NOT NULL,
    step_count integer NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'finished', 'failed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  -- The first outcome of each step wins; a later, different one is ignored.
  CREATE TABLE $schema.step_outcomes (
    run_id uuid NOT NULL REFERENCES $schema.runs ON DELETE CASCADE,
    step integer NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('finished', 'failed')),
    body jsonb NOT NULL,
    message_id text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step)
  );
  -- Every message the scheduler publishes, under its deterministic message id: recorded 'dispatching' in
  -- the transaction that decides it, 'dispatched' once RabbitMQ confirmed it.
  CREATE TABLE $schema.dispatches (
    message_id text PRIMARY KEY,
    run_id uuid NOT NULL REFERENCES $schema.runs ON DELETE CASCADE,
    step integer,
    routing_key text NOT NULL,
    priority integer NOT NULL,
    body jsonb NOT NULL,
    state text NOT NULL CHECK (state IN ('dispatching', 'dispatched')),
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
  );
  CREATE INDEX dispatches_pending ON $schema.dispatches (created_at) WHERE state = 'dispatching';
  CREATE INDEX dispatches_run ON $schema.dispatches (run_id);
  CREATE INDEX runs_status ON $schema.runs (status);
  `,
  `
  -- The janitor: when a failed run's outputs were removed (a finished run's outputs are the sender's), and
  -- lookups of ended runs by age and of running runs by receipt.
  ALTER TABLE $schema.runs ADD COLUMN outputs_removed_at timestamptz;
  CREATE INDEX runs_ended ON $schema.runs (updated_at) WHERE status <> 'running';
  CREATE INDEX runs_running_receipt ON $schema.runs (receipt_id) WHERE status = 'running';
  `,
];

/**
 * Creates the schema and brings its tables to the latest version (the shared runner of
 * `@dicomflow/database`). Safe to run from several replicas at once.
 */
export async function migrate(pool: Pool, schema: string, logger: Logger): Promise<void> {
  await runMigrations(pool, { schema, name: 'scheduler', migrations: MIGRATIONS, logger });
}

/** The newest migration version (for tests). */
export const LATEST_MIGRATION = MIGRATIONS.length;
