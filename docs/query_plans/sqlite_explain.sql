.print '## default page (ID_ASC)'
EXPLAIN QUERY PLAN SELECT * FROM users WHERE merged_into IS NULL ORDER BY id ASC LIMIT 101;
.print '## CREATED_AT_DESC after a cursor'
EXPLAIN QUERY PLAN SELECT * FROM users WHERE merged_into IS NULL AND created_at <= '2026-03-05 17:20:00' AND (created_at < '2026-03-05 17:20:00' OR id < 'x') ORDER BY created_at DESC, id DESC LIMIT 101;
.print '## unionid'
EXPLAIN QUERY PLAN SELECT * FROM users WHERE merged_into IS NULL AND unionid = 'u' ORDER BY id LIMIT 101;
.print '## phoneNumber'
EXPLAIN QUERY PLAN SELECT * FROM users WHERE merged_into IS NULL AND phone_number = 'p' ORDER BY id LIMIT 101;
.print '## openid (any app)'
EXPLAIN QUERY PLAN SELECT * FROM users WHERE merged_into IS NULL AND id IN (SELECT user_id FROM mini_program_identities WHERE openid = 'o' UNION ALL SELECT user_id FROM official_account_identities WHERE openid = 'o') ORDER BY id LIMIT 101;
.print '## appId'
EXPLAIN QUERY PLAN SELECT * FROM users WHERE merged_into IS NULL AND EXISTS (SELECT 1 FROM mini_program_identities WHERE user_id = users.id AND app_id = 'a') ORDER BY id LIMIT 101;
.print '## subscribed'
EXPLAIN QUERY PLAN SELECT * FROM users WHERE merged_into IS NULL AND EXISTS (SELECT 1 FROM official_account_identities WHERE user_id = users.id AND subscribed) ORDER BY id LIMIT 101;
.print '## page identities'
EXPLAIN QUERY PLAN SELECT * FROM mini_program_identities WHERE user_id IN ('a','b') ORDER BY created_at, id;
