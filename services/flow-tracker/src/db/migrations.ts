import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The schema a migration runs in: the data source's `schema` option (TRACKER_DB_SCHEMA), quoted. */
function schemaOf(runner: QueryRunner): string {
  const options = runner.dataSource.options as { schema?: string };
  const schema = options.schema ?? 'public';
  return `"${schema.replaceAll('"', '""')}"`;
}

/**
 * The tracker's tables. Migrations are never edited once released: a change is a new class. Step timings
 * are `started`/`ended` (not start/end: END is reserved in SQL, and dashboards write these by hand).
 */
export class Initial1763900000000 implements MigrationInterface {
  name = 'Initial1763900000000';

  async up(runner: QueryRunner): Promise<void> {
    const s = schemaOf(runner);
    await runner.query(`
      CREATE TABLE ${s}.events (
        event_key text PRIMARY KEY,
        routing_key text NOT NULL,
        run_id uuid,
        receipt_id uuid,
        body jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX events_run ON ${s}.events (run_id) WHERE run_id IS NOT NULL;
      CREATE INDEX events_receipt ON ${s}.events (receipt_id) WHERE receipt_id IS NOT NULL;

      CREATE TABLE ${s}.runs (
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
      CREATE INDEX runs_ts ON ${s}.runs (ts DESC, id DESC);
      CREATE INDEX runs_status_ts ON ${s}.runs (status, ts DESC);
      CREATE INDEX runs_receipt ON ${s}.runs (receipt_id);

      CREATE TABLE ${s}.steps (
        run_id uuid NOT NULL REFERENCES ${s}.runs ON DELETE CASCADE,
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

      CREATE TABLE ${s}.receipts (
        receipt_id uuid PRIMARY KEY,
        received_at timestamptz NOT NULL,
        calling_ae_title text NOT NULL,
        calling_host text NOT NULL,
        instance_count integer NOT NULL,
        patient text NOT NULL DEFAULT '',
        study_uids text NOT NULL
      );

      CREATE TABLE ${s}.study_receipts (
        study_instance_uid text NOT NULL,
        receipt_id uuid NOT NULL,
        received_at timestamptz NOT NULL,
        instance_count integer NOT NULL,
        series jsonb NOT NULL,
        PRIMARY KEY (study_instance_uid, receipt_id)
      );

      CREATE TABLE ${s}.studies (
        study_instance_uid text PRIMARY KEY,
        revision integer NOT NULL,
        series_count integer NOT NULL,
        instance_count integer NOT NULL,
        first_received timestamptz NOT NULL,
        last_received timestamptz NOT NULL
      );
    `);
  }

  async down(runner: QueryRunner): Promise<void> {
    const s = schemaOf(runner);
    await runner.query(
      `DROP TABLE ${s}.studies, ${s}.study_receipts, ${s}.receipts, ${s}.steps, ${s}.runs, ${s}.events`,
    );
  }
}

/**
 * `send_retries`: the latest `send.retrying` of each target of a run, so that `GET /runs/:id` (and
 * Grafana) can say which destination a sending run waits for, why and until when.
 */
export class SendRetries1796600000000 implements MigrationInterface {
  name = 'SendRetries1796600000000';

  async up(runner: QueryRunner): Promise<void> {
    const s = schemaOf(runner);
    await runner.query(`
      CREATE TABLE ${s}.send_retries (
        run_id uuid NOT NULL REFERENCES ${s}.runs ON DELETE CASCADE,
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
    `);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE ${schemaOf(runner)}.send_retries`);
  }
}

/** Every migration, oldest first. */
export const TRACKER_MIGRATIONS = [Initial1763900000000, SendRetries1796600000000];
