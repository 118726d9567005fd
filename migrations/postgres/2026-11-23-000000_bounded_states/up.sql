-- Live states per app are capped (oldest evicted first): find an app's unused states newest first.
CREATE INDEX oauth_states_live_by_app ON oauth_states (app_id, created_at) WHERE used_at IS NULL;
