-- The reference service's API keys. Only a digest of each token is stored (SHA-256 of a
-- 256-bit random secret: nothing to brute-force, so no slow hash is needed), with a short
-- public prefix to find it by. Scopes: admin, service, lab, brand:<brand user id>.
CREATE TABLE IF NOT EXISTS truelabel_meta.api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    prefix      text NOT NULL UNIQUE CHECK (prefix ~ '^[0-9a-f]{12}$'),
    digest      bytea NOT NULL CHECK (octet_length(digest) = 32),
    scopes      text[] NOT NULL CHECK (cardinality(scopes) > 0),
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- What the service's least-privilege role may ask, and nothing more: the digest and scopes of
-- one active key by its prefix (never the list of keys), and whether any key is active (serve's
-- check before it listens beyond loopback). SECURITY DEFINER with a fixed search_path, EXECUTE
-- revoked from PUBLIC and granted to the app role by `schema roles`.
CREATE OR REPLACE FUNCTION truelabel_meta.lookup_api_key(key_prefix text)
RETURNS TABLE (digest bytea, scopes text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.digest, k.scopes FROM truelabel_meta.api_keys k
    WHERE k.prefix = key_prefix AND k.revoked_at IS NULL
$$;
REVOKE ALL ON FUNCTION truelabel_meta.lookup_api_key(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION truelabel_meta.has_active_api_key() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM truelabel_meta.api_keys WHERE revoked_at IS NULL)
$$;
REVOKE ALL ON FUNCTION truelabel_meta.has_active_api_key() FROM PUBLIC;
