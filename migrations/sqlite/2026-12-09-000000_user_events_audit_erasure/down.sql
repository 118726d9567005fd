DROP TABLE audit_events;
DROP TABLE event_deliveries;
DROP TABLE event_endpoints;
DROP TABLE user_events;
ALTER TABLE users DROP COLUMN deleted_at;
ALTER TABLE users DROP COLUMN disabled_reason;
ALTER TABLE users DROP COLUMN disabled_at;
