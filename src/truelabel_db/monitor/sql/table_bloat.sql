-- Table bloat, estimated from statistics (the model of ioguix's pgsql-bloat-estimation, used by
-- check_postgres, PgHero and pgwatch): the pages the live rows would need, from pg_stats'
-- average widths and null fractions, the tuple header and alignment, the page header and the
-- table's fillfactor, against the pages the table has. TOAST pages are counted beside the heap's
-- at four tuples per page. A table whose columns lack statistics is flagged not_applicable.
SELECT schemaname, tblname, tblid,
       bs * tblpages AS real_bytes,
       greatest(tblpages - est_tblpages_ff, 0) * bs AS bloat_bytes,
       CASE WHEN tblpages > 0 AND tblpages > est_tblpages_ff
            THEN 100 * (tblpages - est_tblpages_ff) / tblpages::float ELSE 0 END AS bloat_pct,
       fillfactor, reltuples, is_na
  FROM (
    SELECT ceil(reltuples / ((bs - page_hdr) * fillfactor / (tpl_size * 100))) + ceil(toasttuples / 4)
               AS est_tblpages_ff,
           tblpages, fillfactor, bs, tblid, schemaname, tblname, reltuples, is_na
      FROM (
        SELECT (4 + tpl_hdr_size + tpl_data_size + (2 * ma)
                - CASE WHEN tpl_hdr_size % ma = 0 THEN ma ELSE tpl_hdr_size % ma END
                - CASE WHEN ceil(tpl_data_size)::int % ma = 0 THEN ma ELSE ceil(tpl_data_size)::int % ma END
               ) AS tpl_size,
               heappages + toastpages AS tblpages, reltuples, toasttuples, bs, page_hdr, tblid,
               schemaname, tblname, fillfactor, is_na
          FROM (
            SELECT tbl.oid AS tblid, ns.nspname AS schemaname, tbl.relname AS tblname,
                   greatest(tbl.reltuples, 0) AS reltuples, tbl.relpages AS heappages,
                   coalesce(toast.relpages, 0) AS toastpages,
                   greatest(coalesce(toast.reltuples, 0), 0) AS toasttuples,
                   coalesce(substring(array_to_string(tbl.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::smallint,
                            100) AS fillfactor,
                   current_setting('block_size')::numeric AS bs,
                   CASE WHEN version() ~ 'mingw32|64-bit|x86_64|ppc64|ia64|amd64|aarch64|arm64'
                        THEN 8 ELSE 4 END AS ma,
                   24 AS page_hdr,
                   23 + CASE WHEN max(coalesce(s.null_frac, 0)) > 0
                             THEN (7 + count(s.attname)) / 8 ELSE 0::int END AS tpl_hdr_size,
                   sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS tpl_data_size,
                   bool_or(att.atttypid = 'pg_catalog.name'::regtype)
                     OR sum(CASE WHEN att.attnum > 0 THEN 1 ELSE 0 END) <> count(s.attname)
                     OR tbl.reltuples < 0 AS is_na
              FROM pg_attribute att
              JOIN pg_class tbl ON att.attrelid = tbl.oid
              JOIN pg_namespace ns ON ns.oid = tbl.relnamespace
              LEFT JOIN pg_stats s ON s.schemaname = ns.nspname AND s.tablename = tbl.relname
                                  AND NOT s.inherited AND s.attname = att.attname
              LEFT JOIN pg_class toast ON tbl.reltoastrelid = toast.oid
             WHERE NOT att.attisdropped AND att.attnum > 0
               AND tbl.relkind IN ('r', 'm')
               AND ns.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
          ) AS per_table
      ) AS sized
  ) AS estimated
 ORDER BY bloat_bytes DESC
