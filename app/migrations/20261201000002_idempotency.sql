-- Idempotency-Key records belong to the foundation (app/src/idempotency.rs), not to the orders
-- feature whose migration first created them. Already there wherever that migration ran; this
-- creates the table where it did not (a fork that removed the example domain), identically.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    status_code  smallint,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
