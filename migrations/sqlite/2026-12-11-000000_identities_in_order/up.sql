-- A user's identities in the order every read gives them (created_at, then id): the compiled
-- reads' lists walk it for each user instead of sorting the user's rows. (user_id, app_id) stays:
-- the listing's appId and has* filters are index-only on it.
CREATE INDEX mini_program_identities_user_order ON mini_program_identities (user_id, created_at, id);
CREATE INDEX official_account_identities_user_order ON official_account_identities (user_id, created_at, id);
CREATE INDEX website_identities_user_order ON website_identities (user_id, created_at, id);
CREATE INDEX mobile_app_identities_user_order ON mobile_app_identities (user_id, created_at, id);
