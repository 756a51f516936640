-- Orders and their lines. Lines snapshot the product's sku, name and price at purchase time:
-- later catalog edits (or deletions) never change what a customer bought or paid.
CREATE TABLE orders (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'placed' CHECK (status IN ('placed', 'cancelled', 'fulfilled')),
    currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_cents bigint NOT NULL CHECK (total_cents >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- "My orders, newest first" is a keyset walk over this index.
CREATE INDEX orders_user_id_id_idx ON orders (user_id, id DESC);
CREATE TRIGGER orders_set_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE order_lines (
    order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no          integer NOT NULL,
    product_id       uuid REFERENCES products (id) ON DELETE SET NULL,
    sku              text NOT NULL,
    name             text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents > 0),
    PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_product_id_idx ON order_lines (product_id);

-- Idempotency-Key records: the first successful response for (user, key), replayed for 24 h.
CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    status_code  smallint,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
