-- The token manager keeps each app's jsapi_ticket (JS-SDK) the way it keeps its access token:
-- one row per app and kind, leased, sealed and shared the same way. `kind` says what the row
-- keeps; the rows before this migration are access tokens.
ALTER TABLE wechat_access_tokens
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'access_token'
    CHECK (kind IN ('access_token', 'jsapi_ticket'));
ALTER TABLE wechat_access_tokens ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE wechat_access_tokens DROP CONSTRAINT wechat_access_tokens_pkey;
ALTER TABLE wechat_access_tokens ADD PRIMARY KEY (app_id, kind);
