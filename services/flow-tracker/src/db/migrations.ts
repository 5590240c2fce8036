import type { PoolClient } from '@dicomflow/database';
import { PermanentError } from '@dicomflow/runtime';

/**
 * The tracker's tables, one SQL script per version (the shared runner of `@dicomflow/database`), applied in
 * order and never edited once released: a change is a new version. `$schema` stands for the quoted schema
 * name. Step timings are `started`/`ended` (not start/end: END is reserved in SQL, and dashboards write
 * these by hand).
 */
export const TRACKER_MIGRATIONS: readonly string[] = [
  // 1 (was TypeORM's Initial1763900000000)
  `
      CREATE TABLE $schema.events (
        event_key text PRIMARY KEY,
        routing_key text NOT NULL,
        run_id uuid,
        receipt_id uuid,
        body jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX events_run ON $schema.events (run_id) WHERE run_id IS NOT NULL;
      CREATE INDEX events_receipt ON $schema.events (receipt_id) WHERE receipt_id IS NOT NULL;

      CREATE TABLE $schema.runs (
        id uuid PRIMARY KEY,
        ts timestamptz NOT NULL,
        uid text NOT NULL DEFAULT '',
        name text NOT NULL DEFAULT '',
        version text NOT NULL DEFAULT '',
        patient text NOT NULL DEFAULT '',
        priority integer,
        sender text NOT NULL DEFAULT '',
        destinations text NOT NULL DEFAULT '',
        received timestamptz,
        dispatched timestamptz,
        finished timestamptz,
        sent timestamptz,
        status integer NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2, 3, 4, 400)),
        failure_reason text,
        failure_message text,
        receipt_id uuid,
        flow_file text NOT NULL DEFAULT '',
        step_count integer,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX runs_ts ON $schema.runs (ts DESC, id DESC);
      CREATE INDEX runs_status_ts ON $schema.runs (status, ts DESC);
      CREATE INDEX runs_receipt ON $schema.runs (receipt_id);

      CREATE TABLE $schema.steps (
        run_id uuid NOT NULL REFERENCES $schema.runs ON DELETE CASCADE,
        step integer NOT NULL,
        state text NOT NULL CHECK (state IN ('dispatched', 'running', 'finished', 'failed')),
        image text NOT NULL DEFAULT '',
        queue text NOT NULL DEFAULT '',
        worker text NOT NULL DEFAULT '',
        gpu text NOT NULL DEFAULT '',
        dispatched timestamptz,
        started timestamptz,
        ended timestamptz,
        exit_code integer,
        log text,
        failure_reason text,
        failure_message text,
        PRIMARY KEY (run_id, step)
      );

      CREATE TABLE $schema.receipts (
        receipt_id uuid PRIMARY KEY,
        received_at timestamptz NOT NULL,
        calling_ae_title text NOT NULL,
        calling_host text NOT NULL,
        instance_count integer NOT NULL,
        patient text NOT NULL DEFAULT '',
        study_uids text NOT NULL
      );

      CREATE TABLE $schema.study_receipts (
        study_instance_uid text NOT NULL,
        receipt_id uuid NOT NULL,
        received_at timestamptz NOT NULL,
        instance_count integer NOT NULL,
        series jsonb NOT NULL,
        PRIMARY KEY (study_instance_uid, receipt_id)
      );

      CREATE TABLE $schema.studies (
        study_instance_uid text PRIMARY KEY,
        revision integer NOT NULL,
        series_count integer NOT NULL,
        instance_count integer NOT NULL,
        first_received timestamptz NOT NULL,
        last_received timestamptz NOT NULL
      );
  `,
  // 2 (was SendRetries1796600000000): `send_retries`, the latest `send.retrying` of each target of a run, so
  // that `GET /runs/:id` (and Grafana) can say which destination a sending run waits for, why and until when.
  `
      CREATE TABLE $schema.send_retries (
        run_id uuid NOT NULL REFERENCES $schema.runs ON DELETE CASCADE,
        target text NOT NULL,
        kind text NOT NULL,
        attempt integer NOT NULL,
        max_attempts integer NOT NULL,
        error_code text NOT NULL,
        error_message text NOT NULL,
        retrying_at timestamptz NOT NULL,
        next_attempt_at timestamptz NOT NULL,
        PRIMARY KEY (run_id, target)
      );
  `,
  // 3: what the janitor looks rows up by.
  `
      CREATE INDEX events_recorded_at ON $schema.events (recorded_at);
      CREATE INDEX runs_updated_at ON $schema.runs (updated_at);
      CREATE INDEX receipts_received_at ON $schema.receipts (received_at);
  `,
  // 4: provenance. What ran (the flow's hash, each step's image id and registry digests), which instances
  // each receipt brought (from its index), and which instances each run delivered where (from the sender's
  // delivered manifest). Instance rows go with their receipt or run (the janitor deletes those).
  `
      ALTER TABLE $schema.runs ADD COLUMN flow_hash text NOT NULL DEFAULT '';
      ALTER TABLE $schema.steps
        ADD COLUMN image_id text NOT NULL DEFAULT '',
        ADD COLUMN repo_digests text[] NOT NULL DEFAULT '{}';

      CREATE TABLE $schema.received_instances (
        receipt_id uuid NOT NULL REFERENCES $schema.receipts ON DELETE CASCADE,
        sop_instance_uid text NOT NULL,
        study_instance_uid text NOT NULL,
        series_instance_uid text NOT NULL,
        sop_class_uid text NOT NULL,
        PRIMARY KEY (receipt_id, sop_instance_uid)
      );
      CREATE INDEX received_instances_sop ON $schema.received_instances (sop_instance_uid);
      CREATE INDEX received_instances_study ON $schema.received_instances (study_instance_uid);

      CREATE TABLE $schema.delivered_instances (
        run_id uuid NOT NULL REFERENCES $schema.runs ON DELETE CASCADE,
        sop_instance_uid text NOT NULL,
        destination text NOT NULL,
        resend_id text NOT NULL DEFAULT '',
        step integer NOT NULL,
        delivered_at timestamptz NOT NULL,
        PRIMARY KEY (run_id, resend_id, destination, sop_instance_uid)
      );
      CREATE INDEX delivered_instances_sop ON $schema.delivered_instances (sop_instance_uid);
  `,
];

/** The TypeORM migrations the tracker had, in order: version n is the n-th. */
const TYPEORM_NAMES = ['Initial1763900000000', 'SendRetries1796600000000'];

/**
 * Takes over a schema that TypeORM migrated (its `migrations` table has `id, timestamp, name`): the
 * versions its rows name count as applied, and the table is dropped so the shared runner can create its
 * own. Resolves with that version (0 for a schema TypeORM never migrated).
 */
export async function adoptTypeormHistory(client: PoolClient, quotedSchema: string): Promise<number> {
  const { rows: typeorm } = await client.query<{ found: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM pg_attribute
       WHERE attrelid = to_regclass($1) AND attname = 'name' AND NOT attisdropped
     ) AS found`,
    [`${quotedSchema}.migrations`],
  );
  if (typeorm[0]?.found !== true) return 0;
  const { rows } = await client.query<{ name: string }>(`SELECT name FROM ${quotedSchema}.migrations`);
  const names = new Set(rows.map((row) => row.name));
  const version = TYPEORM_NAMES.filter((name) => names.has(name)).length;
  if (names.size !== version || TYPEORM_NAMES.slice(0, version).some((name) => !names.has(name)))
    throw new PermanentError(
      `${quotedSchema}.migrations lists TypeORM migrations this release does not know in order: ${[...names].join(', ')}`,
    );
  await client.query(`DROP TABLE ${quotedSchema}.migrations`);
  return version;
}
