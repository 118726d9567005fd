-- Live OA states per app are bounded by construction, on any number of instances: each app's
-- states take limits.max_live_states_per_app slots in turn. A new state takes slot
-- (issued - 1) mod cap, where `issued` counts the app's states (oauth_state_counters), and
-- replaces the state in it: the one issued cap states before. The unique index is the bound.
-- States from before this migration have no slot; they expire within state_ttl_secs.
ALTER TABLE oauth_states ADD COLUMN slot BIGINT;
CREATE UNIQUE INDEX oauth_states_app_slot ON oauth_states (app_id, slot);
DROP INDEX oauth_states_live_by_app;

CREATE TABLE oauth_state_counters (
    app_id TEXT PRIMARY KEY NOT NULL,
    issued BIGINT NOT NULL
);
