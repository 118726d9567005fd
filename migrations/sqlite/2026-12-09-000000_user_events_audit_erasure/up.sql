-- Disable and erase (issue 23). A disabled user's logins are refused (USER_DISABLED); a deleted
-- user is a tombstone with no personal data (deleted_at set, merge links kept).
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP;
ALTER TABLE users ADD COLUMN disabled_reason TEXT;
ALTER TABLE users ADD COLUMN deleted_at TIMESTAMP;

-- The transactional outbox and the feed: one row per change other systems care about, written
-- in the change's transaction. `seq` is the order of writing (per user it is the order of
-- commits: every writer holds the user's row lock); `position` the feed's order, given after
-- commit by one sequencer at a time (`identity/events/feed.rs`), so a cursor never skips a
-- row that committed late.
CREATE TABLE user_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    user_id TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    position BIGINT UNIQUE
);
CREATE INDEX user_events_unsequenced ON user_events (seq) WHERE position IS NULL;
CREATE INDEX user_events_user ON user_events (user_id);
CREATE INDEX user_events_created ON user_events (created_at);

-- Where events go (Standard Webhooks). `events` is the subscribed types, comma-wrapped
-- (",user.created,user.merged,"); `secret` the signing secret, sealed with the master key.
CREATE TABLE event_endpoints (
    id TEXT PRIMARY KEY NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT,
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    failing_since TIMESTAMP,
    last_error TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    -- Set when a whole batch of its deliveries failed (it looks down): nothing is tried before.
    paused_until TIMESTAMP
);

-- One event to one endpoint: queued in the event's transaction, delivered by the
-- `event_delivery` job, oldest first per user (`user_id`, and for a merge also its source,
-- `also_user_id`). Deleting an endpoint deletes its deliveries; one queued by a transaction
-- that read the endpoint just before is never delivered (the job starts from the endpoints)
-- and goes with the purge.
CREATE TABLE event_deliveries (
    endpoint_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    last_attempt_at TIMESTAMP,
    response_status INTEGER,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP,
    also_user_id TEXT,
    PRIMARY KEY (endpoint_id, event_seq)
);
CREATE INDEX event_deliveries_due ON event_deliveries (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX event_deliveries_pending ON event_deliveries (endpoint_id, event_seq) WHERE status = 'pending';
CREATE INDEX event_deliveries_user ON event_deliveries (endpoint_id, user_id, event_seq) WHERE status = 'pending';
CREATE INDEX event_deliveries_created ON event_deliveries (created_at);

-- Every admin or service action, with the API key's name as the actor; details hold no secrets.
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    user_id TEXT,
    details TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX audit_events_user ON audit_events (user_id, seq);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_created ON audit_events (created_at);
