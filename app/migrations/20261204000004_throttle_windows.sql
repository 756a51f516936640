-- Every throttle counter in one table, shared by every replica: failed logins per account as
-- before, and now attempts per client network too (logins, registrations, password resets),
-- which each replica used to count in its own memory — three replicas let a client make three
-- times the configured attempts, and a restart forgot them.
CREATE TABLE throttle_windows (
    -- What is counted, e.g. 'login:account' or 'login:client'.
    scope             text NOT NULL,
    -- Per what: a lower-cased email, or a client network (an IPv4 address, an IPv6 /64).
    key               text NOT NULL,
    attempts          integer NOT NULL CHECK (attempts >= 0),
    window_started_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

INSERT INTO throttle_windows (scope, key, attempts, window_started_at)
SELECT 'login:account', account, failures, window_started_at FROM login_failures;

-- login_failures stays for now: replicas of the previous release keep using it until the rollout
-- replaces them (expand, then contract). A later release's migration drops it.
