-- Background jobs, leased through the database: one runner at a time holds a job's lease
-- (lease_owner = the instance and a token of that claim, until lease_until) and renews it while
-- it runs; when an instance dies its lease runs out and another picks the job up from its
-- checkpoint. A periodic job's key is its kind; a one-off job's key is unique per subject (or
-- its id). The unique constraint is named jobs_key_key (src/db/tx.rs retries races on it).
CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    checkpoint TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'paused')),
    run_at TIMESTAMP NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    CONSTRAINT jobs_key_key UNIQUE (key)
);
-- Claiming: the oldest due job among the queued and running (lease expired) ones.
CREATE INDEX jobs_due ON jobs (status, run_at);
