-- OA web-authorization states: single-use, expiring; return_to is set for the server-driven flow,
-- browser_binding (SHA-256 of a cookie set on the browser that started it) too; code_challenge
-- (base64url SHA-256 of the frontend's verifier) when the frontend asked for one.
CREATE TABLE oauth_states (
    id TEXT PRIMARY KEY NOT NULL,
    app_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    return_to TEXT,
    browser_binding TEXT,
    code_challenge TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);

-- One-time login tickets of the server-driven flow (stored as SHA-256 hashes).
CREATE TABLE login_tickets (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    new_user BOOLEAN NOT NULL,
    code_challenge TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX login_tickets_expires ON login_tickets (expires_at);

-- Which identity an unlink moved.
ALTER TABLE merge_events ADD COLUMN identity_id TEXT;
