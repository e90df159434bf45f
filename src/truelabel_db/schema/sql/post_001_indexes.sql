-- Indexes built after the data is loaded. Each statement stands alone so that the copy can
-- build them in parallel on several connections. Each one names what it serves: a hot path
-- (truelabel_db.hotpaths.postgres_paths), a foreign key's check when a parent row is deleted
-- or re-keyed (without it every such delete scans the child table), or the plan's time-series
-- layout. The plan's indexes that no query uses (on users' email, role, creation time and
-- metadata; products' status, category, nutritional info and claims; validations' status
-- partial indexes; analytics events' type, entity and data) are not built: each cost build time
-- in every copy and write time on every insert, and served nothing. BENCHMARKS.md lists them.
-- serves: scan analytics (a brand's products); FK products.user_id
CREATE INDEX IF NOT EXISTS idx_products_user_id ON products (user_id);
-- serves: the product list (newest first)
CREATE INDEX IF NOT EXISTS idx_products_created_at ON products (created_at DESC);
-- serves: search (full text)
CREATE INDEX IF NOT EXISTS idx_products_search ON products USING gin (search_vector);
-- serves: FK reports.product_id
CREATE INDEX IF NOT EXISTS idx_reports_product_lab ON reports (product_id, laboratory_id);
-- serves: FK reports.laboratory_id
CREATE INDEX IF NOT EXISTS idx_reports_laboratory ON reports (laboratory_id);
-- serves: the product list and a product's detail (its validations); FK validations.product_id
CREATE INDEX IF NOT EXISTS idx_validations_product ON validations (product_id);
-- serves: FK validations.user_id
CREATE INDEX IF NOT EXISTS idx_validations_user ON validations (user_id);
-- serves: FK validations.report_id
CREATE INDEX IF NOT EXISTS idx_validations_report ON validations (report_id)
    WHERE report_id IS NOT NULL;
-- serves: FK product_seals.product_id
CREATE INDEX IF NOT EXISTS idx_product_seals_product ON product_seals (product_id);
-- serves: scans by time within a month (the plan's BRIN on time; partitions prune by month)
CREATE INDEX IF NOT EXISTS idx_qr_access_time ON qr_code_access USING brin (accessed_at);
-- serves: scan analytics, popular products
CREATE INDEX IF NOT EXISTS idx_qr_access_code ON qr_code_access (qr_code, accessed_at);
-- serves: the validation queue
CREATE INDEX IF NOT EXISTS idx_queue_by_priority ON validation_queue (priority DESC, created_at)
    WHERE status IN ('PENDING', 'ASSIGNED', 'IN_PROGRESS');
-- serves: FK validation_queue.product_id
CREATE INDEX IF NOT EXISTS idx_queue_product ON validation_queue (product_id);
-- serves: FK validation_queue.requested_by_id
CREATE INDEX IF NOT EXISTS idx_queue_requested_by ON validation_queue (requested_by_id);
-- serves: FK validation_queue.assigned_to_id
CREATE INDEX IF NOT EXISTS idx_queue_assigned_to ON validation_queue (assigned_to_id)
    WHERE assigned_to_id IS NOT NULL;
-- serves: FK validation_queue_history.queue_id
CREATE INDEX IF NOT EXISTS idx_queue_history_queue ON validation_queue_history (queue_id, created_at);
-- serves: FK validation_queue_history.performed_by_id
CREATE INDEX IF NOT EXISTS idx_queue_history_performer ON validation_queue_history (performed_by_id);
-- serves: events by time within a month (the plan's BRIN on time)
CREATE INDEX IF NOT EXISTS idx_analytics_time ON analytics_events USING brin (created_at);
-- serves: FK analytics_events.user_id
CREATE INDEX IF NOT EXISTS idx_analytics_user ON analytics_events (user_id) WHERE user_id IS NOT NULL;
