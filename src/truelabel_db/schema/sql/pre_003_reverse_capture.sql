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

-- The table's name comes as the trigger's argument: on a partitioned table the trigger fires
-- on the partition, whose TG_TABLE_NAME is not the table the mapping knows.
CREATE OR REPLACE FUNCTION truelabel_meta.capture_reverse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO truelabel_meta.reverse_changelog (tbl, op, pk) VALUES (TG_ARGV[0], 'D', OLD.id::text);
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.id IS DISTINCT FROM NEW.id THEN
        INSERT INTO truelabel_meta.reverse_changelog (tbl, op, pk) VALUES (TG_ARGV[0], 'D', OLD.id::text);
    END IF;
    INSERT INTO truelabel_meta.reverse_changelog (tbl, op, pk) VALUES (TG_ARGV[0], 'U', NEW.id::text);
    RETURN NEW;
END;
$$;
