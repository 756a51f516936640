-- The transactional outbox: events written in the transaction of the change that causes them,
-- dispatched to listeners (webhooks, email) by the `outbox.dispatch` task queued beside them.
CREATE TABLE outbox_events (
    -- UUIDv7, so ids sort by time; also the webhook-id receivers dedupe by.
    id            uuid        PRIMARY KEY,
    type          text        NOT NULL CHECK (type ~ '^[a-z_]+(\.[a-z_]+)+$'),
    payload       jsonb       NOT NULL,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    -- Set when every listener has taken the event; NULL means waiting (the outbox lag).
    dispatched_at timestamptz
);

-- The lag metric reads the oldest waiting event; pruning reads old dispatched ones.
CREATE INDEX outbox_events_waiting ON outbox_events (occurred_at) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_events_occurred_at ON outbox_events (occurred_at);
