-- truelabel-db's own state, kept apart from the application's tables.
CREATE SCHEMA IF NOT EXISTS truelabel_meta;

CREATE TABLE IF NOT EXISTS truelabel_meta.schema_migrations (
    version     text PRIMARY KEY,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS truelabel_meta.schema_features (
    name        text PRIMARY KEY,
    available   boolean NOT NULL,
    detail      text,
    checked_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS truelabel_meta.copy_runs (
    run_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_path         text NOT NULL,
    source_fingerprint  text NOT NULL,
    snapshot_path       text NOT NULL,
    options             jsonb NOT NULL DEFAULT '{}',
    changelog_position  bigint,
    status              text NOT NULL DEFAULT 'running'
                        CHECK (status IN ('running', 'done', 'abandoned')),
    started_at          timestamptz NOT NULL DEFAULT now(),
    finished_at         timestamptz
);

CREATE TABLE IF NOT EXISTS truelabel_meta.copy_chunks (
    run_id            bigint NOT NULL REFERENCES truelabel_meta.copy_runs ON DELETE CASCADE,
    legacy_table      text NOT NULL,
    chunk_no          integer NOT NULL,
    rowid_low         bigint NOT NULL,
    rowid_high        bigint NOT NULL,
    rows_read         bigint,
    rows_written      bigint,
    rows_quarantined  bigint,
    rows_repaired     bigint,
    path              text,
    done_at           timestamptz,
    PRIMARY KEY (run_id, legacy_table, chunk_no)
);

CREATE TABLE IF NOT EXISTS truelabel_meta.copy_steps (
    run_id   bigint NOT NULL REFERENCES truelabel_meta.copy_runs ON DELETE CASCADE,
    step     text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}',
    done_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, step)
);

-- Every source row that is not in the application's tables is here, with why.
CREATE TABLE IF NOT EXISTS truelabel_meta.quarantine (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id          bigint REFERENCES truelabel_meta.copy_runs ON DELETE SET NULL,
    legacy_table    text NOT NULL,
    legacy_key      text,
    stage           text NOT NULL CHECK (stage IN ('convert', 'load', 'duplicate', 'orphan', 'follow')),
    reasons         jsonb NOT NULL,
    original        jsonb NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolution      text
);
CREATE INDEX IF NOT EXISTS quarantine_open_idx
    ON truelabel_meta.quarantine (legacy_table) WHERE resolved_at IS NULL;

-- Creates the monthly partitions of a time-partitioned table between two instants (UTC
-- months), skipping months that already have one. Identifiers go through format(%I).
CREATE OR REPLACE FUNCTION truelabel_meta.ensure_month_partitions(
    parent regclass, from_ts timestamptz, to_ts timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month   timestamptz := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    stop    timestamptz := to_ts;
    created integer := 0;
    base    text;
    nsp     text;
    child   text;
BEGIN
    SELECT c.relname, n.nspname INTO base, nsp
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    WHILE month <= stop LOOP
        child := base || '_' || to_char(month AT TIME ZONE 'UTC', 'YYYY_MM');
        IF to_regclass(format('%I.%I', nsp, child)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           nsp, child, parent, month,
                           (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
        month := (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
    END LOOP;
    RETURN created;
END;
$$;

-- The follower's position in the legacy changelog, moved in the same transaction as the
-- changes it applied: exactly once across crashes.
CREATE TABLE IF NOT EXISTS truelabel_meta.follow_state (
    source_path     text PRIMARY KEY,
    position        bigint NOT NULL,
    applied_at      timestamptz NOT NULL DEFAULT now(),
    lag_rows        bigint,
    lag_ms          bigint,
    rows_per_second double precision,
    changes_applied bigint NOT NULL DEFAULT 0
);

-- `migrate`'s checkpoints: a rerun skips what is recorded here.
CREATE TABLE IF NOT EXISTS truelabel_meta.migrate_checkpoints (
    source_path  text NOT NULL,
    step         text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}',
    done_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_path, step)
);
