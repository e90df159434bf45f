-- brand_dashboard_stats (plan §3.3). The plan's version joins products × validations × scans
-- and counts DISTINCT over the product of the three, which explodes for popular products;
-- each figure is aggregated on its own here and joined per brand, with the same columns.
CREATE MATERIALIZED VIEW IF NOT EXISTS brand_dashboard_stats AS
WITH product_counts AS (
    SELECT user_id,
           count(*) AS total_products,
           count(*) FILTER (WHERE status = 'VALIDATED') AS validated_products
      FROM products GROUP BY user_id
), validation_counts AS (
    SELECT p.user_id,
           count(*) AS total_validations,
           avg(extract(epoch FROM (v.updated_at - v.created_at)) / 3600)::numeric(10,2)
               AS avg_validation_hours
      FROM validations v JOIN products p ON p.id = v.product_id GROUP BY p.user_id
), scan_counts AS (
    SELECT p.user_id, count(*) AS total_scans, max(q.accessed_at) AS last_scan_at
      FROM qr_code_access q JOIN products p ON p.qr_code = q.qr_code GROUP BY p.user_id
)
SELECT u.id AS user_id,
       coalesce(pc.total_products, 0) AS total_products,
       coalesce(pc.validated_products, 0) AS validated_products,
       coalesce(vc.total_validations, 0) AS total_validations,
       vc.avg_validation_hours,
       coalesce(sc.total_scans, 0) AS total_scans,
       sc.last_scan_at,
       now() AS refreshed_at
  FROM users u
  LEFT JOIN product_counts pc ON pc.user_id = u.id
  LEFT JOIN validation_counts vc ON vc.user_id = u.id
  LEFT JOIN scan_counts sc ON sc.user_id = u.id
 WHERE u.role = 'BRAND'
WITH NO DATA;

-- Plain and unique over every row: what REFRESH ... CONCURRENTLY requires.
CREATE UNIQUE INDEX IF NOT EXISTS idx_brand_dashboard_user ON brand_dashboard_stats (user_id);

-- The app's runtime role may refresh the view without owning it: the function runs with its
-- owner's rights on a fixed search_path (no one can shadow a table it names), and only roles
-- granted EXECUTE may call it (`truelabel-db schema roles` grants it to the app role).
CREATE OR REPLACE FUNCTION refresh_dashboard_stats() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF (SELECT relispopulated FROM pg_class WHERE oid = 'brand_dashboard_stats'::regclass) THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY brand_dashboard_stats;
    ELSE
        REFRESH MATERIALIZED VIEW brand_dashboard_stats;
    END IF;
    PERFORM truelabel_meta.cache_event_refreshed('brand_dashboard_stats');
END;
$$;
REVOKE EXECUTE ON FUNCTION refresh_dashboard_stats() FROM PUBLIC;
