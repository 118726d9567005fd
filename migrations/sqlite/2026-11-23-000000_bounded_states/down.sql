DROP INDEX oauth_states_live_by_app;
