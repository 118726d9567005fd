-- Time-ordered ids like the service's UUIDv7 (PostgreSQL 15 has no uuidv7()).
CREATE FUNCTION pg_temp.uuid7_like(at timestamp, n int) RETURNS text LANGUAGE sql AS $$
  SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(r, 1, 3) || '-8'
         || substr(r, 4, 3) || '-' || substr(r, 7, 12)
  FROM (SELECT lpad(to_hex((extract(epoch FROM at) * 1000)::bigint), 12, '0') AS h,
               md5(n::text) AS r) AS parts
$$;
-- 100,000 users (1% merged tombstones), 150,000 identities: 100,000 Mini Program (75,000 in
-- wxbenchminiapp0001, 25,000 in wxbenchminiapp0002), 50,000 Official Account (a third following).
INSERT INTO users (id, unionid, nickname, avatar_url, phone_number, merged_into, created_at, updated_at)
SELECT pg_temp.uuid7_like(timestamp '2026-01-01' + i * interval '1 minute', i),
       CASE WHEN i % 5 <> 0 THEN 'ounion' || lpad(i::text, 22, '0') END,
       CASE WHEN i % 10 = 0 THEN '微信用户' || i ELSE 'User ' || i END,
       NULL,
       CASE WHEN i % 3 = 0 THEN '+86138' || lpad(i::text, 8, '0') END,
       NULL,
       timestamp '2026-01-01' + i * interval '1 minute',
       timestamp '2026-01-01' + i * interval '1 minute'
FROM generate_series(1, 100000) AS i;
CREATE TEMP TABLE seq AS SELECT id, row_number() OVER (ORDER BY created_at) AS i FROM users;
INSERT INTO mini_program_identities (id, user_id, app_id, openid, unionid, session_key, created_at, last_login_at)
SELECT gen_random_uuid()::text, id,
       CASE WHEN i % 4 <> 0 THEN 'wxbenchminiapp0001' ELSE 'wxbenchminiapp0002' END,
       'ompopenid' || lpad(i::text, 19, '0'), NULL, NULL, timestamp '2026-01-01', timestamp '2026-01-01'
FROM seq;
INSERT INTO official_account_identities (id, user_id, app_id, openid, subscribed, created_at)
SELECT gen_random_uuid()::text, id, 'wxbenchofficial001', 'ooaopenid' || lpad(i::text, 19, '0'),
       i % 6 = 0, timestamp '2026-01-01'
FROM seq WHERE i % 2 = 0;
-- 1% tombstones, merged into their neighbour.
UPDATE users u SET merged_into = s2.id, unionid = NULL
FROM seq s1 JOIN seq s2 ON s2.i = s1.i + 1
WHERE u.id = s1.id AND s1.i % 100 = 0;
ANALYZE;
