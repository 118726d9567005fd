-- Message templates registered per app by admins: the channel their app sends them on, whether a
-- subscribe template's permissions are long-term, and their keywords as JSON
-- ([{"key":"thing1","type":"THING"}, ...]) that sent data is checked against.
CREATE TABLE message_templates (
    app_id TEXT NOT NULL,
    template_id TEXT NOT NULL,
    channel TEXT NOT NULL CHECK (channel IN ('official_account_template', 'official_account_subscribe', 'mini_program_subscribe')),
    long_term BOOLEAN NOT NULL DEFAULT FALSE,
    fields TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (app_id, template_id)
);

-- The subscribe permissions a person gave an app for a template: one-time accepts not spent
-- yet, and whether a long-term permission holds. Filled from the webhook's subscribe_msg_*
-- events and from the Mini Program client's report of wx.requestSubscribeMessage;
-- last_source/last_accept_at let one popup reported both ways count once.
CREATE TABLE subscribe_permissions (
    app_id TEXT NOT NULL,
    openid TEXT NOT NULL,
    template_id TEXT NOT NULL,
    one_time INTEGER NOT NULL DEFAULT 0,
    long_term BOOLEAN NOT NULL DEFAULT FALSE,
    last_source TEXT NOT NULL,
    last_accept_at TIMESTAMP,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (app_id, openid, template_id)
);

-- Messages addressed to a user: where they went (app, openid, channel, template: null until a
-- bulk job routes them), how it went, WeChat's msgid for the delivery events. `content` is the
-- request of a single send (empty for a bulk job's messages: the job holds it).
-- `idempotency_key` is scoped by the caller's API key name.
CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    app_id TEXT,
    openid TEXT,
    channel TEXT,
    template_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'uncertain')),
    content TEXT NOT NULL,
    wechat_msg_id TEXT,
    error_code TEXT,
    wechat_errcode BIGINT,
    error TEXT,
    idempotency_key TEXT,
    job_id TEXT,
    created_at TIMESTAMP NOT NULL,
    delivered_at TIMESTAMP
);
CREATE UNIQUE INDEX messages_idempotency ON messages (idempotency_key);
-- A bulk job addresses each user once, however often its listing runs.
CREATE UNIQUE INDEX messages_job_user ON messages (job_id, user_id);
CREATE INDEX messages_job_status ON messages (job_id, status, id);
CREATE INDEX messages_wechat_msg ON messages (app_id, wechat_msg_id);
CREATE INDEX messages_recipient ON messages (app_id, openid, status);
CREATE INDEX messages_user ON messages (user_id, id);
CREATE INDEX messages_app ON messages (app_id, id);
