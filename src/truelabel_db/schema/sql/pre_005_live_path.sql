-- Up to which changelog position the follower's changes have been verified equal: the
-- cutover's check of recent changes then reads only what came after it.
ALTER TABLE truelabel_meta.follow_state ADD COLUMN IF NOT EXISTS verified_position bigint;

-- Quarantine stages: also rows a verification could not make equal.
ALTER TABLE truelabel_meta.quarantine DROP CONSTRAINT IF EXISTS quarantine_stage_check;
ALTER TABLE truelabel_meta.quarantine ADD CONSTRAINT quarantine_stage_check
    CHECK (stage IN ('convert', 'load', 'duplicate', 'orphan', 'follow', 'verify'));

-- Which database is the primary for each legacy file, as the cutover and the rollback switched
-- it: the tools' own source of truth (Redis and the primary file are what the app reads). Every
-- operation that writes to one side on behalf of the other takes this row FOR SHARE, so a
-- switch (FOR UPDATE) waits for it and it sees the switch.
CREATE TABLE IF NOT EXISTS truelabel_meta.primary_state (
    source_path  text PRIMARY KEY,
    primary_db   text NOT NULL CHECK (primary_db IN ('sqlite', 'postgresql')),
    epoch        bigint NOT NULL DEFAULT 1,
    reason       text,
    changed_at   timestamptz NOT NULL DEFAULT now()
);

-- The PostgreSQL fence, symmetric with SQLite's: once a rollback starts, the application's
-- tables refuse writes (statement-level, so it costs one call per statement). The migration's
-- own sessions (the follower, verify's repair, the copy) say who they are and pass.
CREATE OR REPLACE FUNCTION truelabel_meta.refuse_app_writes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('truelabel.migration_writer', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'truelabel: PostgreSQL is not the primary (a rollback made SQLite the primary again); write to SQLite'
            USING ERRCODE = 'read_only_sql_transaction';
    END IF;
    RETURN NULL;
END;
$$;
