-- The database announces what changed, whoever wrote it (the app, the follower, an operator in
-- psql): statement-level AFTER triggers on the tables the cached hot paths read append what the
-- cache's invalidation rules need (the table, the key, the brand, the QR code) to this log and
-- wake the listeners with one pg_notify per transaction (identical notifications of a
-- transaction are folded into one). The triggers are attached after the copy
-- (catalog/cache_changes.py), never during it.
--
-- A listener's position is a snapshot, not a counter: each row carries its transaction's id,
-- and a sweep reads the rows visible now that were not visible in the listener's last snapshot.
-- A counter is handed out before commit, in another order than commits, so "after position N"
-- misses a row numbered below N that commits later; the snapshot cannot.
CREATE TABLE IF NOT EXISTS truelabel_meta.cache_changes (
    xid    bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,  -- xid8 has no BRIN class
    tbl    text NOT NULL,          -- the table, or '*' (truncated: everything is stale)
    key    text,                   -- products, users: id; validations: product_id
    brand  text,                   -- products: user_id; qr_code_access: the scanned product's brand
    qr     text,                   -- products: qr_code
    codes  text[],                 -- qr_code_access: the codes scanned (brands are found by the reader)
    at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Rows arrive in (nearly) increasing xid order: a BRIN index finds "xid >= x" for almost no
-- cost on the write path, where a b-tree cost every logged row an index insertion.
CREATE INDEX IF NOT EXISTS cache_changes_xid_brin ON truelabel_meta.cache_changes USING brin (xid)
    WITH (pages_per_range = 8);

-- One function per table: each knows which columns its rules need. SECURITY DEFINER with a fixed
-- search_path: the app's least-privilege role fires them and has no rights in truelabel_meta.
CREATE OR REPLACE FUNCTION truelabel_meta.cache_event_products() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, key, brand, qr)
        SELECT 'products', id::text, user_id::text, qr_code FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, key, brand, qr)
        SELECT 'products', id::text, user_id::text, qr_code FROM old_rows
        UNION SELECT 'products', id::text, user_id::text, qr_code FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, key, brand, qr)
        SELECT 'products', id::text, user_id::text, qr_code FROM old_rows;
    ELSE
        INSERT INTO truelabel_meta.cache_changes (tbl) VALUES ('*');
    END IF;
    IF FOUND THEN
        PERFORM pg_notify('truelabel_cache', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION truelabel_meta.cache_event_validations() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, key)
        SELECT DISTINCT 'validations', product_id::text FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, key)
        SELECT 'validations', product_id::text FROM old_rows
        UNION SELECT 'validations', product_id::text FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, key)
        SELECT DISTINCT 'validations', product_id::text FROM old_rows;
    ELSE
        INSERT INTO truelabel_meta.cache_changes (tbl) VALUES ('*');
    END IF;
    IF FOUND THEN
        PERFORM pg_notify('truelabel_cache', '');
    END IF;
    RETURN NULL;
END;
$$;

-- The queue is cached as whole pages: one row per statement says "the queue changed".
CREATE OR REPLACE FUNCTION truelabel_meta.cache_event_validation_queue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl) VALUES ('*');
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl) SELECT 'validation_queue' WHERE EXISTS (SELECT 1 FROM old_rows);
    ELSE
        INSERT INTO truelabel_meta.cache_changes (tbl) SELECT 'validation_queue' WHERE EXISTS (SELECT 1 FROM new_rows);
    END IF;
    IF FOUND THEN
        PERFORM pg_notify('truelabel_cache', '');
    END IF;
    RETURN NULL;
END;
$$;

-- Users: only what the cached answers show of a user (name, email as a product's brand_user;
-- role, active) counts; a login (last_login_at, login_count) changes nothing cached. A brand
-- renamed makes each of its products' pages stale: they are logged as product changes.
CREATE OR REPLACE FUNCTION truelabel_meta.cache_event_users() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, key) SELECT 'users', id::text FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE (n.name, n.email, n.role, n.active) IS DISTINCT FROM (o.name, o.email, o.role, o.active) LIMIT 1;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        WITH changed AS (
            SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
             WHERE (n.name, n.email, n.role, n.active) IS DISTINCT FROM (o.name, o.email, o.role, o.active)
        ), logged AS (
            INSERT INTO truelabel_meta.cache_changes (tbl, key) SELECT 'users', id::text FROM changed
        )
        INSERT INTO truelabel_meta.cache_changes (tbl, key, brand, qr)
        SELECT 'products', p.id::text, p.user_id::text, p.qr_code
          FROM public.products p WHERE p.user_id IN (SELECT id FROM changed);
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, key) SELECT 'users', id::text FROM old_rows;
    ELSE
        INSERT INTO truelabel_meta.cache_changes (tbl) VALUES ('*');
    END IF;
    PERFORM pg_notify('truelabel_cache', '');
    RETURN NULL;
END;
$$;

-- Scans: one row per statement with the distinct codes scanned (a group commit of 1000 scans
-- writes one row). Which brands they belong to is looked up by the reader, off the write path:
-- the scan insert is the hottest write, and a join per batch there cost it a quarter.
CREATE OR REPLACE FUNCTION truelabel_meta.cache_event_scans() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, codes)
        SELECT 'qr_code_access', array_agg(DISTINCT qr_code) FROM new_rows HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO truelabel_meta.cache_changes (tbl, codes)
        SELECT 'qr_code_access', array_agg(DISTINCT qr_code) FROM old_rows HAVING count(*) > 0;
    ELSE
        INSERT INTO truelabel_meta.cache_changes (tbl) VALUES ('*');
    END IF;
    IF FOUND THEN
        PERFORM pg_notify('truelabel_cache', '');
    END IF;
    RETURN NULL;
END;
$$;

-- A materialized view has no triggers: whoever refreshes it (the service's job, pg_cron, the
-- maintenance job) says so here, and the dashboards cached from it are dropped.
CREATE OR REPLACE FUNCTION truelabel_meta.cache_event_refreshed(view_name text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO truelabel_meta.cache_changes (tbl) VALUES (view_name);
    PERFORM pg_notify('truelabel_cache', '');
END;
$$;
REVOKE ALL ON FUNCTION truelabel_meta.cache_event_refreshed(text) FROM PUBLIC;

-- What a listener reads: the changes committed since its last snapshot (``since``) and visible
-- in the caller's. STABLE, so it runs in the snapshot of the statement that calls it.
CREATE OR REPLACE FUNCTION truelabel_meta.cache_changes_since(since pg_snapshot)
RETURNS TABLE (tbl text, key text, brand text, qr text, at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH fresh AS (
        SELECT * FROM truelabel_meta.cache_changes c
         WHERE c.xid >= pg_snapshot_xmin(since)::text::bigint
           AND NOT pg_visible_in_snapshot(c.xid::text::xid8, since)
    )
    SELECT f.tbl, f.key, f.brand, f.qr, f.at FROM fresh f WHERE f.codes IS NULL
    UNION ALL
    SELECT 'qr_code_access', NULL, s.brand, NULL, s.at FROM (
        SELECT p.user_id::text AS brand, max(f.at) AS at
          FROM fresh f CROSS JOIN LATERAL unnest(f.codes) AS scanned(code)
          JOIN public.products p ON p.qr_code = scanned.code
         GROUP BY p.user_id) s
$$;

-- The log keeps a window (``keep``) counted from each change's COMMIT: ``at`` is when its row
-- was inserted, and a transaction open longer than the window would commit rows already past
-- it, for a trimmer to delete before any listener swept them. So each trim records its snapshot
-- (a mark), and deletes only rows visible in a mark taken at least ``keep`` ago, i.e. committed
-- at least ``keep`` ago. The newest mark used is how far the log was trimmed: a listener whose
-- position does not see everything that mark saw has lost changes (cache_log_trimmed_past).
CREATE TABLE IF NOT EXISTS truelabel_meta.cache_trim_marks (
    taken_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    snapshot pg_snapshot NOT NULL,
    used     boolean NOT NULL DEFAULT false
);
-- the newest transaction whose rows that mark's trim deleted (NULL: none)
ALTER TABLE truelabel_meta.cache_trim_marks ADD COLUMN IF NOT EXISTS deleted_max_xid bigint;

-- ``keep`` is at least 5 minutes whoever asks (the app role may call this): nobody can empty the
-- log under the listeners. One trimmer at a time; the others skip.
CREATE OR REPLACE FUNCTION truelabel_meta.trim_cache_changes(keep interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    removed bigint := 0;
    mark truelabel_meta.cache_trim_marks%ROWTYPE;
    newest bigint;
BEGIN
    keep := greatest(keep, interval '5 minutes');
    IF pg_try_advisory_xact_lock(hashtext('truelabel_meta.trim_cache_changes')) THEN
        INSERT INTO truelabel_meta.cache_trim_marks (snapshot)
        SELECT pg_current_snapshot()
         WHERE NOT EXISTS (SELECT 1 FROM truelabel_meta.cache_trim_marks
                            WHERE taken_at > clock_timestamp() - interval '30 seconds');
        SELECT * INTO mark FROM truelabel_meta.cache_trim_marks
         WHERE taken_at <= clock_timestamp() - keep ORDER BY taken_at DESC LIMIT 1;
        IF FOUND THEN
            WITH gone AS (
                DELETE FROM truelabel_meta.cache_changes c
                 WHERE c.at < clock_timestamp() - keep
                   AND c.xid < pg_snapshot_xmax(mark.snapshot)::text::bigint
                   AND pg_visible_in_snapshot(c.xid::text::xid8, mark.snapshot)
                RETURNING c.xid)
            SELECT count(*), max(xid) INTO removed, newest FROM gone;
            UPDATE truelabel_meta.cache_trim_marks
               SET used = true, deleted_max_xid = greatest(deleted_max_xid, newest)
             WHERE taken_at = mark.taken_at;
            DELETE FROM truelabel_meta.cache_trim_marks WHERE taken_at < mark.taken_at;
        END IF;
    END IF;
    RETURN removed;
END;
$$;

-- Whether the log may have lost changes a listener at ``since`` has not seen, i.e. whether a
-- trim deleted a row whose transaction ``since`` does not see. A trim deletes only rows visible
-- in its mark and records the newest transaction it deleted: a row newer than ``since`` makes
-- that newest one invisible in ``since``; a row of a transaction ``since`` saw running (its xip)
-- had committed in the mark, at or below that newest one. Only transactions that logged rows
-- count: activity elsewhere in the cluster (other databases) flags nothing.
CREATE OR REPLACE FUNCTION truelabel_meta.cache_log_trimmed_past(since pg_snapshot) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM truelabel_meta.cache_trim_marks m
                    WHERE m.used AND m.deleted_max_xid >= pg_snapshot_xmin(since)::text::bigint
                      AND (NOT pg_visible_in_snapshot(m.deleted_max_xid::text::xid8, since)
                           OR EXISTS (SELECT 1 FROM pg_snapshot_xip(since) AS running(x)
                                       WHERE running.x::text::bigint <= m.deleted_max_xid
                                         AND pg_visible_in_snapshot(running.x, m.snapshot))))
$$;
REVOKE ALL ON FUNCTION truelabel_meta.cache_changes_since(pg_snapshot) FROM PUBLIC;
REVOKE ALL ON FUNCTION truelabel_meta.trim_cache_changes(interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION truelabel_meta.cache_log_trimmed_past(pg_snapshot) FROM PUBLIC;

-- The trigger functions are SECURITY DEFINER: with PUBLIC's EXECUTE, the app role could attach
-- them to a table of its own and TRUNCATE it (every process empties its cache) or log made-up
-- rows. A trigger fires without its function's EXECUTE privilege (checked at CREATE TRIGGER,
-- by the owner), so nobody else needs it.
REVOKE ALL ON FUNCTION truelabel_meta.cache_event_products() FROM PUBLIC;
REVOKE ALL ON FUNCTION truelabel_meta.cache_event_validations() FROM PUBLIC;
REVOKE ALL ON FUNCTION truelabel_meta.cache_event_validation_queue() FROM PUBLIC;
REVOKE ALL ON FUNCTION truelabel_meta.cache_event_users() FROM PUBLIC;
REVOKE ALL ON FUNCTION truelabel_meta.cache_event_scans() FROM PUBLIC;
