ALTER TABLE merge_events DROP COLUMN identity_id;
DROP TABLE login_tickets;
DROP TABLE oauth_states;
