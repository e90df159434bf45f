-- B-tree index bloat, estimated from statistics (ioguix's btree model, as check_postgres and
-- pgwatch use it): each index tuple is its header (plus the null bitmap when a key column has
-- nulls) and the keys' average widths from pg_stats, aligned; the leaf pages those tuples need
-- at the index's fillfactor (default 90) are compared with the pages the index has. Indexes
-- whose key columns lack statistics, or use the "name" type, are flagged not_applicable.
SELECT nspname AS schemaname, tblname, idxname, idxoid,
       bs * relpages AS real_bytes,
       CASE WHEN relpages > est_pages_ff THEN bs * (relpages - est_pages_ff) ELSE 0 END AS bloat_bytes,
       CASE WHEN relpages > est_pages_ff THEN 100 * (relpages - est_pages_ff)::float / relpages
            ELSE 0 END AS bloat_pct,
       fillfactor, reltuples, is_na
  FROM (
    SELECT coalesce(1 + ceil(reltuples / floor((bs - pageopqdata - pagehdr) * fillfactor
                                                / (100 * (4 + nulldatahdrwidth)::float))), 0) AS est_pages_ff,
           bs, nspname, tblname, idxname, idxoid, relpages, fillfactor, reltuples, is_na
      FROM (
        SELECT maxalign, bs, nspname, tblname, idxname, idxoid, reltuples, relpages, fillfactor,
               (index_tuple_hdr_bm + maxalign
                - CASE WHEN index_tuple_hdr_bm % maxalign = 0 THEN maxalign ELSE index_tuple_hdr_bm % maxalign END
                + nulldatawidth + maxalign
                - CASE WHEN nulldatawidth = 0 THEN 0
                       WHEN nulldatawidth::integer % maxalign = 0 THEN maxalign
                       ELSE nulldatawidth::integer % maxalign END
               )::numeric AS nulldatahdrwidth,
               pagehdr, pageopqdata, is_na
          FROM (
            SELECT n.nspname, i.tblname, i.idxname, i.idxoid, greatest(i.reltuples, 0) AS reltuples,
                   i.relpages, i.fillfactor,
                   current_setting('block_size')::numeric AS bs,
                   CASE WHEN version() ~ 'mingw32|64-bit|x86_64|ppc64|ia64|amd64|aarch64|arm64'
                        THEN 8 ELSE 4 END AS maxalign,
                   24 AS pagehdr, 16 AS pageopqdata,
                   CASE WHEN max(coalesce(s.null_frac, 0)) = 0 THEN 8
                        ELSE 8 + ((32 + 8 - 1) / 8) END AS index_tuple_hdr_bm,
                   sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)) AS nulldatawidth,
                   bool_or(i.atttypid = 'pg_catalog.name'::regtype)
                     OR count(s.attname) < count(*) OR min(i.reltuples) < 0 AS is_na
              FROM (
                SELECT ct.relname AS tblname, ct.relnamespace, ic.idxname, ic.reltuples, ic.relpages,
                       ic.idxoid, ic.fillfactor,
                       coalesce(a1.attname, a2.attname) AS attname,
                       coalesce(a1.atttypid, a2.atttypid) AS atttypid,
                       CASE WHEN a1.attnum IS NULL THEN ic.idxname ELSE ct.relname END AS attrelname
                  FROM (
                    SELECT ci.relname AS idxname, ci.reltuples, ci.relpages, x.indrelid AS tbloid,
                           x.indexrelid AS idxoid,
                           coalesce(substring(array_to_string(ci.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::smallint,
                                    90) AS fillfactor,
                           x.indkey::int2[] AS indkey, generate_series(1, x.indnkeyatts) AS attpos
                      FROM pg_index x
                      JOIN pg_class ci ON ci.oid = x.indexrelid
                     WHERE ci.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
                       AND ci.relpages > 0 AND ci.relkind = 'i' AND x.indisvalid
                  ) AS ic
                  JOIN pg_class ct ON ct.oid = ic.tbloid
                  LEFT JOIN pg_attribute a1 ON ic.indkey[ic.attpos - 1] <> 0
                        AND a1.attrelid = ic.tbloid AND a1.attnum = ic.indkey[ic.attpos - 1]
                  LEFT JOIN pg_attribute a2 ON ic.indkey[ic.attpos - 1] = 0
                        AND a2.attrelid = ic.idxoid AND a2.attnum = ic.attpos
              ) AS i
              JOIN pg_namespace n ON n.oid = i.relnamespace
              LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = i.attrelname
                                  AND s.attname = i.attname AND NOT s.inherited
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
          ) AS per_index
      ) AS sized
  ) AS estimated
 ORDER BY bloat_bytes DESC
