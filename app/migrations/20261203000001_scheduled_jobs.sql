-- The scheduler's run log. A job is due when it has no run that started within its interval;
-- the check and the run happen under an advisory lock, so across replicas one runs it.
CREATE TABLE scheduled_job_runs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         text NOT NULL CHECK (length(job) BETWEEN 1 AND 100),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    -- Rows the job deleted or changed; NULL when it failed.
    affected    bigint,
    error       text,
    CHECK ((affected IS NULL) <> (error IS NULL))
);
CREATE INDEX scheduled_job_runs_job_started_at_idx ON scheduled_job_runs (job, started_at DESC);
