-- Password-reset tokens, emailed to the account's address. Like refresh tokens they are kept
-- only as SHA-256 hashes: a database leak yields no link that resets a password.
CREATE TABLE password_reset_tokens (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    -- Set when the token reset the password; a token works once.
    used_at    timestamptz
);
-- Counting an account's outstanding tokens, and deleting them after a reset.
CREATE INDEX password_reset_tokens_user_id_idx ON password_reset_tokens (user_id)
    WHERE used_at IS NULL;
