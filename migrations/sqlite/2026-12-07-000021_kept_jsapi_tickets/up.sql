-- The token manager keeps each app's jsapi_ticket (JS-SDK) the way it keeps its access token:
-- one row per app and kind, leased, sealed and shared the same way. `kind` says what the row
-- keeps; the rows before this migration are access tokens. SQLite cannot change a primary key in
-- place: the table is rebuilt.
CREATE TABLE wechat_access_tokens_by_kind (
    app_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('access_token', 'jsapi_ticket')),
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
    last_force_at TIMESTAMP,
    PRIMARY KEY (app_id, kind)
);
INSERT INTO wechat_access_tokens_by_kind (app_id, kind, token, token_hash, failed_hash,
        expires_at, fetched_at, refresh_owner, refreshing_until, refreshes, force_day,
        force_count, last_force_at)
    SELECT app_id, 'access_token', token, token_hash, failed_hash, expires_at, fetched_at,
        refresh_owner, refreshing_until, refreshes, force_day, force_count, last_force_at
    FROM wechat_access_tokens;
DROP TABLE wechat_access_tokens;
ALTER TABLE wechat_access_tokens_by_kind RENAME TO wechat_access_tokens;
