CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    unionid TEXT,
    nickname TEXT,
    avatar_url TEXT,
    phone_number TEXT,
    merged_into TEXT REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
-- One live user per unionid; tombstones (merged users) keep theirs for history.
CREATE UNIQUE INDEX users_live_unionid ON users (unionid) WHERE unionid IS NOT NULL AND merged_into IS NULL;
CREATE INDEX users_merged_into ON users (merged_into);

CREATE TABLE mini_program_identities (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    app_id TEXT NOT NULL,
    openid TEXT NOT NULL,
    unionid TEXT,
    session_key TEXT,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP NOT NULL,
    UNIQUE (app_id, openid)
);
CREATE INDEX mini_program_identities_user ON mini_program_identities (user_id);
CREATE INDEX mini_program_identities_unionid ON mini_program_identities (unionid);

CREATE TABLE official_account_identities (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    app_id TEXT NOT NULL,
    openid TEXT NOT NULL,
    unionid TEXT,
    scope TEXT,
    subscribed BOOLEAN NOT NULL DEFAULT FALSE,
    subscribed_at TIMESTAMP,
    nickname TEXT,
    avatar_url TEXT,
    sex INTEGER,
    province TEXT,
    city TEXT,
    country TEXT,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP,
    UNIQUE (app_id, openid)
);
CREATE INDEX official_account_identities_user ON official_account_identities (user_id);
CREATE INDEX official_account_identities_unionid ON official_account_identities (unionid);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    family TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    replaced_by TEXT,
    created_at TIMESTAMP NOT NULL,
    user_agent TEXT,
    ip TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_family ON sessions (family);

CREATE TABLE merge_events (
    id TEXT PRIMARY KEY NOT NULL,
    survivor_id TEXT NOT NULL REFERENCES users(id),
    merged_id TEXT NOT NULL REFERENCES users(id),
    reason TEXT NOT NULL,
    actor TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX merge_events_survivor ON merge_events (survivor_id);
CREATE INDEX merge_events_merged ON merge_events (merged_id);
