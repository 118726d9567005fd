-- bench-reads seed: :users users (ids shaped like our UUIDv7s, in creation order), a Mini
-- Program identity for 3 in 4 of them, an Official Account identity for 3 in 4 (half of all
-- users have both); users with a Mini Program identity have a unionid, OA-only ones do not
-- (silent snsapi_base logins). 100,000 users give 150,000 identities. `__USERS__` is replaced.
CREATE TEMP TABLE bench_seq AS
SELECT i,
       lpad(to_hex((extract(epoch FROM timestamp '2026-01-01') * 1000)::bigint + i * 1000), 12, '0') AS t,
       md5('user' || i) AS r,
       md5('mp' || i) AS m,
       md5('oa' || i) AS o,
       timestamp '2026-01-01' + i * interval '1 second' AS at
FROM generate_series(1, __USERS__) AS i;

INSERT INTO users (id, unionid, nickname, avatar_url, phone_number, merged_into, created_at, updated_at)
SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 1, 3) || '-8' || substr(r, 4, 3) || '-' || substr(r, 7, 12),
       CASE WHEN i % 4 <> 3 THEN 'oU' || substr(md5('union' || i), 1, 26) END,
       'user ' || i,
       CASE WHEN i % 2 = 0 THEN 'https://thirdwx.qlogo.cn/mmopen/' || r || '/132' END,
       CASE WHEN i % 5 = 0 THEN '+86138' || lpad((i % 100000000)::text, 8, '0') END,
       NULL, at, at
FROM bench_seq;

INSERT INTO mini_program_identities (id, user_id, app_id, openid, unionid, session_key, created_at, last_login_at)
SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(m, 1, 3) || '-8' || substr(m, 4, 3) || '-' || substr(m, 7, 12),
       substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 1, 3) || '-8' || substr(r, 4, 3) || '-' || substr(r, 7, 12),
       'wxsandboxminiapp01', 'oM' || substr(m, 1, 26), 'oU' || substr(md5('union' || i), 1, 26), NULL, at, at
FROM bench_seq WHERE i % 4 <> 3;

INSERT INTO official_account_identities (id, user_id, app_id, openid, unionid, scope, subscribed, subscribed_at,
                                         nickname, avatar_url, sex, province, city, country, created_at, last_login_at)
SELECT substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(o, 1, 3) || '-8' || substr(o, 4, 3) || '-' || substr(o, 7, 12),
       substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(r, 1, 3) || '-8' || substr(r, 4, 3) || '-' || substr(r, 7, 12),
       'wxsandboxofficial1', 'oO' || substr(o, 1, 26),
       CASE WHEN i % 4 <> 3 THEN 'oU' || substr(md5('union' || i), 1, 26) END,
       'snsapi_base', i % 3 = 0, CASE WHEN i % 3 = 0 THEN at END,
       NULL, NULL, (i % 3)::int, 'Guangdong', 'Shenzhen', 'CN', at, at
FROM bench_seq WHERE i % 4 <> 2;

DROP TABLE bench_seq;
ANALYZE users;
ANALYZE mini_program_identities;
ANALYZE official_account_identities;
