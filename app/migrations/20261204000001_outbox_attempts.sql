-- Dispatch bookkeeping on the event itself: when it is next due, how often dispatching it
-- failed and why, so a stuck event tells its story in one row (and the lag alert has a cause).
ALTER TABLE outbox_events
    ADD COLUMN available_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN last_error   text        CHECK (length(last_error) <= 500);
