DROP TABLE webhook_events;
DROP TABLE follower_sync_seen;
DROP TABLE follower_syncs;
DROP TABLE wechat_access_tokens;
