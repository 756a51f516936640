-- Webhook subscriptions and a record of every delivery attempt (the webhooks feature).
CREATE TABLE webhook_subscriptions (
    id                uuid        PRIMARY KEY,
    url               text        NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    events            text[]      NOT NULL CHECK (cardinality(events) >= 1),
    -- The signing secret, encrypted (ChaCha20-Poly1305, nonce first) under the configured key
    -- named here, with the subscription id as associated data: the row alone reveals nothing.
    secret_ciphertext bytea       NOT NULL,
    secret_key_id     text        NOT NULL,
    enabled           boolean     NOT NULL DEFAULT true,
    -- Why delivery stopped, e.g. the receiver answered 410 Gone.
    disabled_reason   text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- One event to one subscription. The unique pair makes the fan-out idempotent.
CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    event_id        uuid        NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    subscription_id uuid        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    status          text        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'delivered', 'dead', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    UNIQUE (event_id, subscription_id)
);
CREATE INDEX webhook_deliveries_subscription_id ON webhook_deliveries (subscription_id);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (created_at) WHERE status = 'pending';

-- One HTTP attempt: the receiver's status, or why there was none.
CREATE TABLE webhook_delivery_attempts (
    -- UUIDv7: the deliveries API pages by it, newest first.
    id           uuid        PRIMARY KEY,
    delivery_id  uuid        NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      integer     NOT NULL CHECK (attempt >= 1),
    attempted_at timestamptz NOT NULL,
    duration_ms  integer     NOT NULL CHECK (duration_ms >= 0),
    status_code  integer     CHECK (status_code BETWEEN 100 AND 599),
    error        text        CHECK (length(error) <= 500),
    CHECK (status_code IS NOT NULL OR error IS NOT NULL),
    UNIQUE (delivery_id, attempt)
);
