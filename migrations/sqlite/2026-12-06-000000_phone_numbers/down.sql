DROP TABLE phone_code_exchanges;
ALTER TABLE users DROP COLUMN phone_number_verified_at;
