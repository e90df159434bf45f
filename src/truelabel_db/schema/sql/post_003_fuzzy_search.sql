-- requires: pg_trgm
-- Fuzzy product search (plan: pg_trgm "para busca fuzzy"), beside the full-text index: the
-- search hot path matches a misspelt word against the name (`q <% name`).
CREATE INDEX IF NOT EXISTS idx_products_name_trgm ON products USING gin (name gin_trgm_ops);
