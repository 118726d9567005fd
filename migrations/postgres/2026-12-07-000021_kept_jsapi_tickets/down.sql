DELETE FROM wechat_access_tokens WHERE kind <> 'access_token';
ALTER TABLE wechat_access_tokens DROP CONSTRAINT wechat_access_tokens_pkey;
ALTER TABLE wechat_access_tokens ADD PRIMARY KEY (app_id);
ALTER TABLE wechat_access_tokens DROP COLUMN kind;
