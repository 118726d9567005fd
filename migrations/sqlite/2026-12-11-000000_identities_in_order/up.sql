-- A user's identities in the order every read gives them (created_at, then id): the compiled
-- reads' lists and the loaders walk the index instead of sorting each user's rows. It serves
-- the lookups by user (and by user and app: a user has a few identities) that (user_id, app_id) did.
CREATE INDEX mini_program_identities_user_order ON mini_program_identities (user_id, created_at, id);
DROP INDEX mini_program_identities_user_app;
CREATE INDEX official_account_identities_user_order ON official_account_identities (user_id, created_at, id);
DROP INDEX official_account_identities_user_app;
CREATE INDEX website_identities_user_order ON website_identities (user_id, created_at, id);
DROP INDEX website_identities_user_app;
CREATE INDEX mobile_app_identities_user_order ON mobile_app_identities (user_id, created_at, id);
DROP INDEX mobile_app_identities_user_app;
