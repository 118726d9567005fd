DROP TABLE oauth_state_counters;
CREATE INDEX oauth_states_live_by_app ON oauth_states (app_id, created_at) WHERE used_at IS NULL;
DROP INDEX oauth_states_app_slot;
ALTER TABLE oauth_states DROP COLUMN slot;
