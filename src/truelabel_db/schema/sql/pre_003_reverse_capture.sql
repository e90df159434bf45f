-- After cutover, the app writes to PostgreSQL. These triggers record which rows it changed,
-- so that a rollback can replay them into SQLite and nothing written after cutover is lost.
-- They are attached to the tables by the cutover itself (after the drain), never before, so
-- the follower's own writes are not echoed back.
CREATE TABLE IF NOT EXISTS truelabel_meta.reverse_changelog (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tbl  text NOT NULL,
    op   char(1) NOT NULL CHECK (op IN ('U', 'D')),
    pk   text NOT NULL,
    at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The table's name and its key column come as the trigger's arguments: on a partitioned table
-- the trigger fires on the partition, whose TG_TABLE_NAME is not the table the mapping knows,
-- and a table carried from a drifted legacy file may be keyed by another column than id.
-- SECURITY DEFINER with a fixed search_path: the app's least-privilege role writes the rows
-- that fire it and has no rights in truelabel_meta; the function writes the changelog for it.
-- The migration's own sessions (truelabel.migration_writer) are not recorded: the cutover
-- installs these triggers while its follower still applies SQLite's last changes, before the
-- write pause, and those must not echo back.
CREATE OR REPLACE FUNCTION truelabel_meta.capture_reverse() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    key_column text := coalesce(TG_ARGV[1], 'id');
    old_key text;
    new_key text;
BEGIN
    IF current_setting('truelabel.migration_writer', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        old_key := to_jsonb(OLD) ->> key_column;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        new_key := to_jsonb(NEW) ->> key_column;
    END IF;
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND old_key IS DISTINCT FROM new_key) THEN
        INSERT INTO truelabel_meta.reverse_changelog (tbl, op, pk) VALUES (TG_ARGV[0], 'D', old_key);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    INSERT INTO truelabel_meta.reverse_changelog (tbl, op, pk) VALUES (TG_ARGV[0], 'U', new_key);
    RETURN NEW;
END;
$$;
REVOKE ALL ON FUNCTION truelabel_meta.capture_reverse() FROM PUBLIC;
