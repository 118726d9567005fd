DROP TABLE merge_events;
DROP TABLE sessions;
DROP TABLE official_account_identities;
DROP TABLE mini_program_identities;
DROP TABLE users;
