-- The example catalog. Search is PostgreSQL full-text over a generated column: built in (no
-- extension to install or allow on a managed database), indexed with GIN, and word-prefix
-- matching ("bol" finds "bolt") covers a product search box. Trigram search (pg_trgm) would
-- add typo tolerance and infix matches at the cost of an extension and larger indexes.
CREATE TABLE products (
    id          uuid PRIMARY KEY,
    sku         text NOT NULL CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    price_cents bigint NOT NULL CHECK (price_cents > 0),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    stock       integer NOT NULL CHECK (stock >= 0),
    -- Bumped by every update: the ETag, and the optimistic lock behind If-Match.
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    search      tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', sku || ' ' || name || ' ' || description)
    ) STORED,
    CONSTRAINT products_sku_key UNIQUE (sku)
);
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE TRIGGER products_set_updated_at BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
