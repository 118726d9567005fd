-- Each app's access token, shared by every instance. `token` is sealed (AES-GCM, like
-- session_key), `token_hash` its SHA-256 so that an instance can invalidate exactly the token that
-- failed. A refresh is leased (refresh_owner until refreshing_until) so that instances do not
-- refresh at once; failed_hash is the token WeChat last called invalid (normal-mode stable_token
-- may hand it out again: then force mode is used); force_day/force_count/last_force_at keep force
-- mode within WeChat's limits (20 a day, 30 s apart).
CREATE TABLE wechat_access_tokens (
    app_id TEXT PRIMARY KEY NOT NULL,
    token TEXT,
    token_hash TEXT,
    failed_hash TEXT,
    expires_at TIMESTAMP,
    fetched_at TIMESTAMP,
    refresh_owner TEXT,
    refreshing_until TIMESTAMP,
    refreshes BIGINT NOT NULL DEFAULT 0,
    force_day TEXT,
    force_count INTEGER NOT NULL DEFAULT 0,
    last_force_at TIMESTAMP
);

-- Follower syncs of Official Accounts: one row per run, its counters updated page by page (the
-- cursor itself is the job's checkpoint).
CREATE TABLE follower_syncs (
    id TEXT PRIMARY KEY NOT NULL,
    app_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'paused', 'completed', 'failed')),
    requested_by TEXT,
    total BIGINT,
    pages INTEGER NOT NULL DEFAULT 0,
    followers_seen BIGINT NOT NULL DEFAULT 0,
    users_created BIGINT NOT NULL DEFAULT 0,
    users_merged BIGINT NOT NULL DEFAULT 0,
    unsubscribed BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);
CREATE INDEX follower_syncs_app ON follower_syncs (app_id, created_at);
-- One sync row per job: two starts at once (an admin's and the scheduler's) share the job and
-- its row.
CREATE UNIQUE INDEX follower_syncs_job ON follower_syncs (job_id);

-- The openids a running follower sync has listed so far; at its end the app's identities it did
-- not list (and that did not follow again since it started) are marked unsubscribed, and its
-- rows here are deleted.
CREATE TABLE follower_sync_seen (
    sync_id TEXT NOT NULL,
    openid TEXT NOT NULL,
    PRIMARY KEY (sync_id, openid)
);

-- Messages and events WeChat pushed to /wechat/{appId}/events, after the signature (and the
-- decryption) checked out: deduplicated on (app_id, dedupe_key), processed by a job.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY NOT NULL,
    app_id TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    msg_type TEXT NOT NULL,
    event TEXT,
    openid TEXT NOT NULL,
    event_at TIMESTAMP NOT NULL,
    payload TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    processed_at TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    UNIQUE (app_id, dedupe_key)
);
CREATE INDEX webhook_events_pending ON webhook_events (app_id, received_at) WHERE processed_at IS NULL;
CREATE INDEX webhook_events_received ON webhook_events (received_at);
