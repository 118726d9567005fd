-- The statements `users` sends (as diesel writes them, with the values inlined), for each
-- filter and order, on the seeded database.
\pset pager off
\echo '## default page: users(first: 100), ID_ASC'
EXPLAIN (ANALYZE, COSTS OFF, TIMING ON, SUMMARY ON) SELECT * FROM users WHERE users.merged_into IS NULL ORDER BY users.id ASC LIMIT 101;
\echo '## the page''s identities (one statement per kind, 100 user ids)'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM mini_program_identities WHERE user_id = ANY (ARRAY(SELECT id FROM users ORDER BY id LIMIT 100)) ORDER BY created_at, id;
\echo '## next page: after a cursor, ID_ASC'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND users.id > '019c29ab-f060-7334-8146-de1b9346272c' ORDER BY users.id ASC LIMIT 101;
\echo '## last: 100 (backward), ID_ASC'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL ORDER BY users.id DESC LIMIT 101;
\echo '## CREATED_AT_DESC, after a cursor'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND (users.created_at <= '2026-03-05 17:20:00' AND (users.created_at < '2026-03-05 17:20:00' OR users.id < '019c29ab-f060-7334-8146-de1b9346272c')) ORDER BY users.created_at DESC, users.id DESC LIMIT 101;
\echo '## createdAfter / createdBefore, CREATED_AT_ASC'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND users.created_at >= '2026-02-01' AND users.created_at < '2026-02-02' ORDER BY users.created_at ASC, users.id ASC LIMIT 101;
\echo '## createdAfter / createdBefore, ID_ASC'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND users.created_at >= '2026-02-01' AND users.created_at < '2026-02-02' ORDER BY users.id ASC LIMIT 101;
\echo '## unionid'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND users.unionid = 'ounion0000000000000000012345' ORDER BY users.id ASC LIMIT 101;
\echo '## unionid, includeMerged'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.unionid = 'ounion0000000000000000012345' ORDER BY users.id ASC LIMIT 101;
\echo '## phoneNumber'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND users.phone_number = '+8613800012345' ORDER BY users.id ASC LIMIT 101;
\echo '## openid (any app)'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND users.id IN (SELECT mini_program_identities.user_id FROM mini_program_identities WHERE mini_program_identities.openid = 'ooaopenid0000000000000012346' UNION ALL SELECT official_account_identities.user_id FROM official_account_identities WHERE official_account_identities.openid = 'ooaopenid0000000000000012346') ORDER BY users.id ASC LIMIT 101;
\echo '## nicknameContains (rare: 3 matches)'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND lower(users.nickname) LIKE '%user 9999%' ESCAPE '\' ORDER BY users.id ASC LIMIT 101;
\echo '## nicknameContains (common: 10%)'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND lower(users.nickname) LIKE '%微信用户%' ESCAPE '\' ORDER BY users.id ASC LIMIT 101;
\echo '## appId (a Mini Program: 25% of users)'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND EXISTS (SELECT mini_program_identities.* FROM mini_program_identities WHERE mini_program_identities.user_id = users.id AND mini_program_identities.app_id = 'wxbenchminiapp0002') ORDER BY users.id ASC LIMIT 101;
\echo '## hasMiniProgram: false (nobody)'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND NOT EXISTS (SELECT mini_program_identities.* FROM mini_program_identities WHERE mini_program_identities.user_id = users.id) ORDER BY users.id ASC LIMIT 101;
\echo '## hasOfficialAccount: true'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND EXISTS (SELECT official_account_identities.* FROM official_account_identities WHERE official_account_identities.user_id = users.id) ORDER BY users.id ASC LIMIT 101;
\echo '## subscribed: true, appId: the OA'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND EXISTS (SELECT official_account_identities.* FROM official_account_identities WHERE official_account_identities.user_id = users.id AND official_account_identities.app_id = 'wxbenchofficial001') AND EXISTS (SELECT official_account_identities.* FROM official_account_identities WHERE official_account_identities.user_id = users.id AND official_account_identities.subscribed AND official_account_identities.app_id = 'wxbenchofficial001') ORDER BY users.id ASC LIMIT 101;
\echo '## subscribed: false'
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM users WHERE users.merged_into IS NULL AND NOT EXISTS (SELECT official_account_identities.* FROM official_account_identities WHERE official_account_identities.user_id = users.id AND official_account_identities.subscribed) ORDER BY users.id ASC LIMIT 101;
\echo '## totalCount (no filter)'
EXPLAIN (ANALYZE, COSTS OFF) SELECT COUNT(*) FROM users WHERE users.merged_into IS NULL;
\echo '## totalCount (subscribed: true)'
EXPLAIN (ANALYZE, COSTS OFF) SELECT COUNT(*) FROM users WHERE users.merged_into IS NULL AND EXISTS (SELECT official_account_identities.* FROM official_account_identities WHERE official_account_identities.user_id = users.id AND official_account_identities.subscribed);
