-- Phone numbers WeChat vouched for (the getPhoneNumber button), stored in E.164.
ALTER TABLE users ADD COLUMN phone_number_verified_at TIMESTAMP;
-- Numbers stored before this migration came from the legacy encryptedData as WeChat wrote them
-- (a Chinese mobile without its country code): E.164 from now on, like every new number, and
-- vouched for by WeChat as much as the new ones (decrypted with the session key, watermark
-- checked), since their last change.
UPDATE users SET phone_number = REPLACE(REPLACE(phone_number, ' ', ''), '-', '')
    WHERE phone_number IS NOT NULL;
UPDATE users SET phone_number_verified_at = updated_at WHERE phone_number IS NOT NULL;
UPDATE users SET phone_number = '+86' || phone_number WHERE phone_number GLOB '1[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]';

-- Each paid getuserphonenumber exchange, kept for the code's five-minute life so that the same
-- code submitted again by the same Mini Program identity is answered without paying twice,
-- and refused to anyone else. `phone_number` is null while the first exchange is in flight.
-- Rows are deleted once expired (see `db::models::phone_exchange`).
CREATE TABLE phone_code_exchanges (
    code_hash TEXT PRIMARY KEY NOT NULL,
    app_id TEXT NOT NULL,
    openid TEXT NOT NULL,
    phone_number TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX phone_code_exchanges_expires_at ON phone_code_exchanges (expires_at);
