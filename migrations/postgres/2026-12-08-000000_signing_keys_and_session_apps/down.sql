ALTER TABLE login_tickets DROP COLUMN app_id;
ALTER TABLE sessions DROP COLUMN app_id;
DROP TABLE signing_keys;
