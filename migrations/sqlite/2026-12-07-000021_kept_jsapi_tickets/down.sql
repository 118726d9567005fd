CREATE TABLE wechat_access_tokens_by_app (
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
INSERT INTO wechat_access_tokens_by_app (app_id, token, token_hash, failed_hash, expires_at,
        fetched_at, refresh_owner, refreshing_until, refreshes, force_day, force_count,
        last_force_at)
    SELECT app_id, token, token_hash, failed_hash, expires_at, fetched_at, refresh_owner,
        refreshing_until, refreshes, force_day, force_count, last_force_at
    FROM wechat_access_tokens WHERE kind = 'access_token';
DROP TABLE wechat_access_tokens;
ALTER TABLE wechat_access_tokens_by_app RENAME TO wechat_access_tokens;
