-- A rotated signing secret keeps signing beside the new one until it expires, so receivers can
-- switch without a window in which they refuse deliveries. Sealed like the current secret.
ALTER TABLE webhook_subscriptions
    ADD COLUMN previous_secret_ciphertext bytea,
    ADD COLUMN previous_secret_key_id     text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD CONSTRAINT webhook_subscriptions_previous_secret_whole CHECK (
        (previous_secret_ciphertext IS NULL) = (previous_secret_key_id IS NULL)
        AND (previous_secret_key_id IS NULL) = (previous_secret_expires_at IS NULL)
    );
