-- The optimized schema (plan §3.1): enums, real types, generated columns, partitions.
-- Constraints, indexes and the dashboard view are post-data: they are built after the copy.
-- The enum types come first, generated from the declared mapping (schema/ddl.py: enum_sql).

CREATE TABLE IF NOT EXISTS legacy_prisma_migrations (
    id                   text NOT NULL,
    checksum             text NOT NULL,
    finished_at          timestamptz,
    migration_name       text NOT NULL,
    logs                 text,
    rolled_back_at       timestamptz,
    started_at           timestamptz NOT NULL DEFAULT now(),
    applied_steps_count  integer NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS users (
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    email          text NOT NULL,
    password       text NOT NULL,
    name           text NOT NULL,
    role           user_role NOT NULL DEFAULT 'BRAND',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    active         boolean NOT NULL DEFAULT true,
    last_login_at  timestamptz,
    login_count    integer NOT NULL DEFAULT 0,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE IF NOT EXISTS laboratories (
    id             uuid NOT NULL DEFAULT gen_random_uuid(),
    name           text NOT NULL,
    accreditation  text NOT NULL,
    email          text NOT NULL,
    phone          text,
    address        text,
    is_active      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS products (
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    name              text NOT NULL,
    brand             text NOT NULL,
    category          text NOT NULL,
    description       text,
    sku               text NOT NULL,
    batch_number      text,
    nutritional_info  jsonb,
    claims            text[],
    image_urls        text[],
    qr_code           text,
    status            product_status NOT NULL DEFAULT 'DRAFT',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    user_id           uuid NOT NULL,
    validation_score  numeric(3,2) GENERATED ALWAYS AS (
        CASE status WHEN 'VALIDATED' THEN 1.0 WHEN 'PENDING' THEN 0.5 ELSE 0.0 END) STORED,
    search_vector     tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('portuguese', coalesce(name, '')), 'A') ||
        setweight(to_tsvector('portuguese', coalesce(brand, '')), 'B') ||
        setweight(to_tsvector('portuguese', coalesce(description, '')), 'C')) STORED
);

CREATE TABLE IF NOT EXISTS reports (
    id                 uuid NOT NULL DEFAULT gen_random_uuid(),
    file_name          text NOT NULL,
    original_name      text NOT NULL,
    file_path          text NOT NULL,
    file_size          bigint NOT NULL,
    mime_type          text NOT NULL,
    analysis_type      text NOT NULL,
    results            jsonb NOT NULL,
    is_verified        boolean NOT NULL DEFAULT false,
    verification_hash  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    product_id         uuid NOT NULL,
    laboratory_id      uuid NOT NULL
);

CREATE TABLE IF NOT EXISTS validations (
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    status            validation_status NOT NULL DEFAULT 'PENDING',
    type              text NOT NULL DEFAULT 'MANUAL',
    claims_validated  jsonb,
    summary           text,
    notes             text,
    validated_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    product_id        uuid NOT NULL,
    report_id         uuid,
    user_id           uuid NOT NULL
);

CREATE TABLE IF NOT EXISTS product_seals (
    id                     uuid NOT NULL DEFAULT gen_random_uuid(),
    product_id             uuid NOT NULL,
    seal_id                text NOT NULL,
    certificate_number     text,
    issued_date            timestamptz,
    expiry_date            timestamptz,
    validating_laboratory  text,
    document_url           text,
    status                 text NOT NULL DEFAULT 'PENDING',
    verified_by            text,
    verified_at            timestamptz,
    notes                  text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS qr_code_access (
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    qr_code      text NOT NULL,
    ip_address   inet,
    user_agent   text,
    location     jsonb,
    device_info  jsonb,
    accessed_at  timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (accessed_at);
CREATE TABLE IF NOT EXISTS qr_code_access_default PARTITION OF qr_code_access DEFAULT;

CREATE TABLE IF NOT EXISTS validation_queue (
    id                  uuid NOT NULL DEFAULT gen_random_uuid(),
    product_id          uuid NOT NULL,
    requested_by_id     uuid NOT NULL,
    assigned_to_id      uuid,
    status              text NOT NULL DEFAULT 'PENDING',
    priority            priority_level NOT NULL DEFAULT 'NORMAL',
    category            text NOT NULL,
    estimated_duration  integer,
    actual_duration     integer,
    assigned_at         timestamptz,
    started_at          timestamptz,
    completed_at        timestamptz,
    due_date            timestamptz,
    notes               text,
    metadata            jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS validation_queue_history (
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    queue_id         uuid NOT NULL,
    action           text NOT NULL,
    previous_status  text,
    new_status       text,
    performed_by_id  uuid NOT NULL,
    reason           text,
    metadata         jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS analytics_events (
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    event_type   text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    uuid NOT NULL,
    user_id      uuid,
    session_id   text,
    data         jsonb,
    ip_address   inet,
    user_agent   text,
    created_at   timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (created_at);
CREATE TABLE IF NOT EXISTS analytics_events_default PARTITION OF analytics_events DEFAULT;

-- L3 of the cache (plan §4.1): persistent entries that survive a Redis flush.
CREATE TABLE IF NOT EXISTS cache_entries (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    tags        text[] NOT NULL DEFAULT '{}',
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_cache_entries_expires ON cache_entries (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_cache_entries_tags ON cache_entries USING gin (tags);

-- No statistics for columns no query filters, joins or groups on: ANALYZE skips them, which
-- makes it about three times cheaper on the two big time-series tables. (Ids keep their
-- n_distinct from the unique index; the columns queried keep the default target.)
ALTER TABLE qr_code_access ALTER COLUMN id SET STATISTICS 0;
ALTER TABLE qr_code_access ALTER COLUMN user_agent SET STATISTICS 0;
ALTER TABLE qr_code_access ALTER COLUMN location SET STATISTICS 0;
ALTER TABLE qr_code_access ALTER COLUMN device_info SET STATISTICS 0;
ALTER TABLE qr_code_access ALTER COLUMN ip_address SET STATISTICS 0;
ALTER TABLE analytics_events ALTER COLUMN id SET STATISTICS 0;
ALTER TABLE analytics_events ALTER COLUMN user_agent SET STATISTICS 0;
ALTER TABLE analytics_events ALTER COLUMN session_id SET STATISTICS 0;
ALTER TABLE analytics_events ALTER COLUMN ip_address SET STATISTICS 0;
