CREATE INDEX mini_program_identities_user_app ON mini_program_identities (user_id, app_id);
DROP INDEX mini_program_identities_user_order;
CREATE INDEX official_account_identities_user_app ON official_account_identities (user_id, app_id);
DROP INDEX official_account_identities_user_order;
CREATE INDEX website_identities_user_app ON website_identities (user_id, app_id);
DROP INDEX website_identities_user_order;
CREATE INDEX mobile_app_identities_user_app ON mobile_app_identities (user_id, app_id);
DROP INDEX mobile_app_identities_user_order;
