DROP TABLE webhook_events;
ALTER TABLE official_account_identities DROP COLUMN synced_at;
DROP TABLE follower_syncs;
DROP TABLE wechat_access_tokens;
