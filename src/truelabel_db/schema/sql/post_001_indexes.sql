-- Indexes of plan §3.1 and §3.2, built after the data is loaded. Each statement stands
-- alone so that the copy can build them in parallel on several connections.
CREATE INDEX IF NOT EXISTS idx_users_email_lower ON users (lower(email));
CREATE INDEX IF NOT EXISTS idx_users_role ON users (role) WHERE active;
CREATE INDEX IF NOT EXISTS idx_users_created_at ON users (created_at DESC);
CREATE INDEX IF NOT EXISTS idx_users_metadata ON users USING gin (metadata);
CREATE INDEX IF NOT EXISTS idx_users_email_domain ON users (split_part(email, '@', 2));
CREATE INDEX IF NOT EXISTS idx_products_user_id ON products (user_id);
CREATE INDEX IF NOT EXISTS idx_products_status ON products (status) WHERE status <> 'DRAFT';
CREATE INDEX IF NOT EXISTS idx_products_category ON products (category);
CREATE INDEX IF NOT EXISTS idx_products_created_at ON products (created_at DESC);
CREATE INDEX IF NOT EXISTS idx_products_search ON products USING gin (search_vector);
CREATE INDEX IF NOT EXISTS idx_products_nutritional ON products USING gin (nutritional_info);
CREATE INDEX IF NOT EXISTS idx_products_claims ON products USING gin (claims);
CREATE INDEX IF NOT EXISTS idx_products_user_status ON products (user_id, status)
    WHERE status IN ('PENDING', 'VALIDATED');
CREATE INDEX IF NOT EXISTS idx_reports_product_lab ON reports (product_id, laboratory_id);
CREATE INDEX IF NOT EXISTS idx_reports_laboratory ON reports (laboratory_id);
CREATE INDEX IF NOT EXISTS idx_validations_product_status ON validations (product_id, status)
    WHERE status <> 'REJECTED';
CREATE INDEX IF NOT EXISTS idx_active_validations ON validations (created_at DESC)
    WHERE status IN ('PENDING', 'APPROVED');
CREATE INDEX IF NOT EXISTS idx_validations_product ON validations (product_id);
CREATE INDEX IF NOT EXISTS idx_validations_user ON validations (user_id);
CREATE INDEX IF NOT EXISTS idx_validations_report ON validations (report_id)
    WHERE report_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_product_seals_product ON product_seals (product_id);
CREATE INDEX IF NOT EXISTS idx_qr_access_time ON qr_code_access USING brin (accessed_at);
CREATE INDEX IF NOT EXISTS idx_qr_access_code ON qr_code_access (qr_code, accessed_at);
CREATE INDEX IF NOT EXISTS idx_queue_by_priority ON validation_queue (priority DESC, created_at)
    WHERE status IN ('PENDING', 'ASSIGNED', 'IN_PROGRESS');
CREATE INDEX IF NOT EXISTS idx_queue_product ON validation_queue (product_id);
CREATE INDEX IF NOT EXISTS idx_queue_requested_by ON validation_queue (requested_by_id);
CREATE INDEX IF NOT EXISTS idx_queue_assigned_to ON validation_queue (assigned_to_id)
    WHERE assigned_to_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_queue_history_queue ON validation_queue_history (queue_id, created_at);
CREATE INDEX IF NOT EXISTS idx_queue_history_performer ON validation_queue_history (performed_by_id);
CREATE INDEX IF NOT EXISTS idx_analytics_time ON analytics_events USING brin (created_at);
CREATE INDEX IF NOT EXISTS idx_analytics_event_type ON analytics_events (event_type, created_at);
CREATE INDEX IF NOT EXISTS idx_analytics_entity ON analytics_events (entity_type, entity_id);
CREATE INDEX IF NOT EXISTS idx_analytics_user ON analytics_events (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_analytics_event_data ON analytics_events USING gin (data jsonb_path_ops);
