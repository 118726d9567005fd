-- The signed queries (signature, timestamp, nonce) of the webhook pushes that passed every
-- check, with the app and a digest of the body they came with: plaintext mode signs no body and
-- no app, so the same query with another body, or on another app that shares the token, is a
-- replay. Shared by every instance and kept across restarts; a row is written only for a push
-- the token signed, and purged once `expires_at` (its timestamp plus twice
-- limits.webhook_freshness_secs) has passed.
CREATE TABLE webhook_signed_queries (
    signature TEXT NOT NULL,
    push_timestamp TEXT NOT NULL,
    nonce TEXT NOT NULL,
    app_id TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (signature, push_timestamp, nonce)
);
CREATE INDEX webhook_signed_queries_expires ON webhook_signed_queries (expires_at);
