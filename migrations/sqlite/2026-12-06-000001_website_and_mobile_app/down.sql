DROP TABLE website_identities;
DROP TABLE mobile_app_identities;
