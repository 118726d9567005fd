-- People who log in through a website app's QR code (网站应用, scope snsapi_login) and a mobile
-- app's WeChat SDK (移动应用): an identity per (app, openid), like the other kinds, with the
-- profile /sns/userinfo gave at the latest login.

CREATE TABLE website_identities (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    app_id TEXT NOT NULL,
    openid TEXT NOT NULL,
    unionid TEXT,
    nickname TEXT,
    avatar_url TEXT,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP NOT NULL,
    UNIQUE (app_id, openid)
);
CREATE INDEX website_identities_user_app ON website_identities (user_id, app_id);
CREATE INDEX website_identities_unionid ON website_identities (unionid);
CREATE INDEX website_identities_openid ON website_identities (openid);

CREATE TABLE mobile_app_identities (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    app_id TEXT NOT NULL,
    openid TEXT NOT NULL,
    unionid TEXT,
    nickname TEXT,
    avatar_url TEXT,
    created_at TIMESTAMP NOT NULL,
    last_login_at TIMESTAMP NOT NULL,
    UNIQUE (app_id, openid)
);
CREATE INDEX mobile_app_identities_user_app ON mobile_app_identities (user_id, app_id);
CREATE INDEX mobile_app_identities_unionid ON mobile_app_identities (unionid);
CREATE INDEX mobile_app_identities_openid ON mobile_app_identities (openid);
