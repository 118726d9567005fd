-- Indexes for the dashboards' `users` listing: one for each filter and sort order (see
-- docs/QUERY_PLANS.md). nicknameContains has none on SQLite (no trigram indexes): it filters
-- the rows the order's index yields.

-- Tombstones only: `merged_into = ?` finds them; `merged_into IS NULL` (every listing) must not
-- look like a selective index condition (SQLite, without statistics, took it for one and
-- sorted every live user for a page).
DROP INDEX users_merged_into;
CREATE INDEX users_merged_into ON users (merged_into) WHERE merged_into IS NOT NULL;
-- orderBy CREATED_AT_ASC/DESC (tie-broken by id) and createdAfter/createdBefore.
CREATE INDEX users_created_at ON users (created_at, id);
-- unionid with includeMerged (live users alone use users_live_unionid).
CREATE INDEX users_unionid ON users (unionid);
CREATE INDEX users_phone_number ON users (phone_number);

-- openid (any app).
CREATE INDEX mini_program_identities_openid ON mini_program_identities (openid);
CREATE INDEX official_account_identities_openid ON official_account_identities (openid);
-- appId, hasMiniProgram, hasOfficialAccount (and the identities of a page's users): the
-- user's identities, by app.
CREATE INDEX mini_program_identities_user_app ON mini_program_identities (user_id, app_id);
DROP INDEX mini_program_identities_user;
CREATE INDEX official_account_identities_user_app ON official_account_identities (user_id, app_id);
DROP INDEX official_account_identities_user;
-- subscribed: the accounts a user follows.
CREATE INDEX official_account_identities_following ON official_account_identities (user_id, app_id) WHERE subscribed;
